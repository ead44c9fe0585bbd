"""Shared set-up for the onboarding tests: moto for what it models, Stubber for the rest.

moto models STS, RAM shares, transit gateways and VPC attachments. It lacks the
multicast-domain API family and the accept/reject of VPC attachments, so:

* the multicast-domain calls go through a separate EC2 client wrapped in botocore's
  ``Stubber``, which validates every request against the real service model;
* accept/reject of a VPC attachment are registered with moto below (botocore still
  serializes and validates the request; moto only applies the state change);
* RAM learns that multicast domains are shareable (real RAM shares them).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto.core.responses import ActionResult
from moto.ec2.models import ec2_backends
from moto.ec2.responses.transit_gateway_attachments import TransitGatewayAttachment
from moto.ram.models import ResourceShare

from mcastkit.config import Config, load_config
from mcastkit.onboard.aws import Aws

MOTO_ACCOUNT = "123456789012"
REGION = "eu-west-2"
ALPHA = "222222222222"
BETA = "333333333333"
STRANGER = "999999999999"
DOMAIN_IDS = {
    "market-data": "tgw-mcast-domain-0aaaaaaaaaaaaaaa1",
    "reference-data": "tgw-mcast-domain-0bbbbbbbbbbbbbbb2",
}
EXAMPLE = "config/example.yaml"


def provider_config(*, provider: str = MOTO_ACCOUNT, tgw_id: str | None = None, **shared: Any) -> Config:
    """The example config with the provider account moto uses and, optionally, recorded ids."""
    base = load_config(EXAMPLE).model_dump(mode="json")
    base["provider_account"] = provider
    if tgw_id is not None:
        base["regions"][REGION]["shared"] = {"transit_gateway_id": tgw_id, "domain_ids": DOMAIN_IDS, **shared}
    return Config.model_validate(base)


def ou_customer_in_london(tgw_id: str) -> Config:
    """:func:`provider_config` with the OU customer (venue-analytics, whose accounts moto's
    Organizations cannot list) entitled in eu-west-2, the region the tests' moto uses."""
    data = provider_config(tgw_id=tgw_id).model_dump(mode="json")
    data["customers"][2]["entitlements"] = [{"region": REGION, "domains": ["market-data"]}]
    return Config.model_validate(data)


def _attachment_state(self: TransitGatewayAttachment, state: str) -> ActionResult:
    attachment_id = self._get_param("TransitGatewayAttachmentId")
    attachment = self.ec2_backend.transit_gateway_attachments[attachment_id]
    attachment.state = state
    return ActionResult({"TransitGatewayVpcAttachment": attachment})


@pytest.fixture
def moto_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        TransitGatewayAttachment,
        "accept_transit_gateway_vpc_attachment",
        lambda self: _attachment_state(self, "available"),
        raising=False,
    )
    monkeypatch.setattr(
        TransitGatewayAttachment,
        "reject_transit_gateway_vpc_attachment",
        lambda self: _attachment_state(self, "rejected"),
        raising=False,
    )
    monkeypatch.setattr(
        ResourceShare,
        "SHAREABLE_RESOURCES",
        [*ResourceShare.SHAREABLE_RESOURCES, "transit-gateway-multicast-domain"],
    )


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


class Provider:
    """A provider estate in moto: TGW, its own attachment, customers' attachments."""

    def __init__(self, *, auto_accept_attachments: bool = False) -> None:
        self.ec2 = boto3.client("ec2", region_name=REGION)
        self.ram = boto3.client("ram", region_name=REGION)
        self.tgw_id = self.ec2.create_transit_gateway(
            Options={
                "MulticastSupport": "enable",
                "AutoAcceptSharedAttachments": "enable" if auto_accept_attachments else "disable",
            }
        )["TransitGateway"]["TransitGatewayId"]
        self.own_attachment = self.attach(owner=None)

    def attach(self, owner: str | None, state: str = "pendingAcceptance") -> str:
        """A VPC attachment; with ``owner`` it is made to look like another account's request."""
        vpc = self.ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
        subnet = self.ec2.create_subnet(VpcId=vpc, CidrBlock="10.99.1.0/24")["Subnet"]["SubnetId"]
        attachment_id = self.ec2.create_transit_gateway_vpc_attachment(
            TransitGatewayId=self.tgw_id, VpcId=vpc, SubnetIds=[subnet]
        )["TransitGatewayVpcAttachment"]["TransitGatewayAttachmentId"]
        if owner is not None:
            backend = ec2_backends[MOTO_ACCOUNT][REGION].transit_gateway_attachments[attachment_id]
            backend.resource_owner_id = owner
            backend.state = state
        return attachment_id

    def state(self, attachment_id: str) -> str:
        found = self.ec2.describe_transit_gateway_attachments(TransitGatewayAttachmentIds=[attachment_id])
        return str(found["TransitGatewayAttachments"][0]["State"])

    def share(self, domain: str, principals: list[str]) -> str:
        arn = self.ram.create_resource_share(
            name=f"venue-md-{REGION}-{domain}",
            resourceArns=[
                f"arn:aws:ec2:{REGION}:{MOTO_ACCOUNT}:transit-gateway/{self.tgw_id}",
                domain_arn(domain),
            ],
            principals=principals,
            allowExternalPrincipals=True,
        )["resourceShare"]["resourceShareArn"]
        return str(arn)


def domain_arn(domain: str) -> str:
    return f"arn:aws:ec2:{REGION}:{MOTO_ACCOUNT}:transit-gateway-multicast-domain/{DOMAIN_IDS[domain]}"


def domains_response(tgw_id: str, *, auto_accept: bool = False) -> dict[str, Any]:
    return {
        "TransitGatewayMulticastDomains": [
            {
                "TransitGatewayMulticastDomainId": domain_id,
                "TransitGatewayId": tgw_id,
                "TransitGatewayMulticastDomainArn": domain_arn(name),
                "OwnerId": MOTO_ACCOUNT,
                "Options": {
                    "Igmpv2Support": "enable",
                    "StaticSourcesSupport": "disable",
                    "AutoAcceptSharedAssociations": "enable" if auto_accept else "disable",
                },
                "State": "available",
            }
            for name, domain_id in DOMAIN_IDS.items()
        ]
    }


def association(
    owner: str, subnet: str, state: str, attachment: str = "tgw-attach-0ccccccccccccccc1"
) -> dict[str, Any]:
    return {
        "TransitGatewayAttachmentId": attachment,
        "ResourceId": "vpc-0123456789abcdef0",
        "ResourceType": "vpc",
        "ResourceOwnerId": owner,
        "Subnet": {"SubnetId": subnet, "State": state},
    }


class MulticastStub:
    """The multicast-domain calls: an EC2 client under botocore's Stubber."""

    def __init__(self) -> None:
        self.client = boto3.client("ec2", region_name=REGION)
        self.stubber = Stubber(self.client)

    def expect(self, operation: str, response: dict[str, Any], params: dict[str, Any] | None = None) -> None:
        self.stubber.add_response(operation, copy.deepcopy(response), params)

    def describe_domains(self, tgw_id: str, *, auto_accept: bool = False) -> None:
        self.expect(
            "describe_transit_gateway_multicast_domains",
            domains_response(tgw_id, auto_accept=auto_accept),
            {"TransitGatewayMulticastDomainIds": sorted(DOMAIN_IDS.values())},
        )

    def associations(self, domain: str, items: list[dict[str, Any]]) -> None:
        self.expect(
            "get_transit_gateway_multicast_domain_associations",
            {"MulticastDomainAssociations": items},
            {"TransitGatewayMulticastDomainId": DOMAIN_IDS[domain]},
        )

    def groups(self, domain: str, items: list[dict[str, Any]]) -> None:
        self.expect(
            "search_transit_gateway_multicast_groups",
            {"MulticastGroups": items},
            {"TransitGatewayMulticastDomainId": DOMAIN_IDS[domain]},
        )

    def decided(self, verb: str, domain: str, attachment: str, subnets: list[str]) -> None:
        self.expect(
            f"{verb}_transit_gateway_multicast_domain_associations",
            {"Associations": {"TransitGatewayMulticastDomainId": DOMAIN_IDS[domain]}},
            {
                "TransitGatewayMulticastDomainId": DOMAIN_IDS[domain],
                "TransitGatewayAttachmentId": attachment,
                "SubnetIds": subnets,
            },
        )

    def __enter__(self) -> MulticastStub:
        self.stubber.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stubber.deactivate()


def member(owner: str, address: str, eni: str = "eni-0123456789abcdef0") -> dict[str, Any]:
    return {
        "GroupIpAddress": address,
        "TransitGatewayAttachmentId": "tgw-attach-0ccccccccccccccc1",
        "SubnetId": "subnet-0123456789abcdef0",
        "ResourceId": "vpc-0123456789abcdef0",
        "ResourceType": "vpc",
        "ResourceOwnerId": owner,
        "NetworkInterfaceId": eni,
        "GroupMember": True,
        "GroupSource": False,
        "MemberType": "igmp",
    }


def provider_aws(stub: MulticastStub, **clients: Any) -> Aws:
    return Aws(region=REGION, clients={"multicast": stub.client, **clients})


@pytest.fixture(name="stub")
def stub_fixture() -> Iterator[MulticastStub]:
    with MulticastStub() as multicast:
        yield multicast
        multicast.stubber.assert_no_pending_responses()
