"""`mcastkit onboard join`: accepts the invitation, waits for the shared TGW, idempotent."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from onboard_support import (
    DOMAIN_IDS,
    MOTO_ACCOUNT,
    REGION,
    MulticastStub,
    credentials,  # noqa: F401
    domain_arn,
    domains_response,
)

from mcastkit import cli
from mcastkit.commands import onboard as onboard_command
from mcastkit.exit import ExitStatus
from mcastkit.onboard.aws import Aws, AwsFailure
from mcastkit.onboard.join import join

pytestmark = pytest.mark.usefixtures("credentials")

PROVIDER = "111111111111"
SHARE = f"arn:aws:ram:{REGION}:{PROVIDER}:resource-share/0f3c1a52-6b7e-4d2a-9c1e-1234567890ab"
INVITATION = f"arn:aws:ram:{REGION}:{PROVIDER}:resource-share-invitation/7d1e5c3a-1111-2222-3333-444455556666"


class Customer:
    """The customer account: moto for STS and EC2, Stubber for RAM invitations and domains."""

    def __init__(self) -> None:
        self.ec2 = boto3.client("ec2", region_name=REGION)
        self.tgw_id = self.ec2.create_transit_gateway(Options={"MulticastSupport": "enable"})[
            "TransitGateway"
        ]["TransitGatewayId"]
        self.ram = boto3.client("ram", region_name=REGION)
        self.ram_stub = Stubber(self.ram)
        self.multicast = MulticastStub()
        self.progress: list[str] = []
        self.slept: list[float] = []

    def aws(self) -> Aws:
        return Aws(region=REGION, clients={"ram": self.ram, "multicast": self.multicast.client})

    def invitation(self, status: str) -> None:
        self.ram_stub.add_response(
            "get_resource_share_invitations",
            {
                "resourceShareInvitations": [
                    {
                        "resourceShareInvitationArn": INVITATION,
                        "resourceShareArn": SHARE,
                        "resourceShareName": "venue-md-eu-west-2-market-data",
                        "senderAccountId": PROVIDER,
                        "receiverAccountId": MOTO_ACCOUNT,
                        "status": status,
                    }
                ]
            },
            {"resourceShareArns": [SHARE]},
        )
        if status == "PENDING":
            self.ram_stub.add_response(
                "accept_resource_share_invitation",
                {"resourceShareInvitation": {"resourceShareInvitationArn": INVITATION, "status": "ACCEPTED"}},
                {"resourceShareInvitationArn": INVITATION},
            )

    def resources(self, visible: bool) -> None:
        items = (
            [
                {
                    "arn": f"arn:aws:ec2:{REGION}:{PROVIDER}:transit-gateway/{self.tgw_id}",
                    "type": "ec2:TransitGateway",
                },
                {"arn": domain_arn("market-data"), "type": "ec2:TransitGatewayMulticastDomain"},
            ]
            if visible
            else []
        )
        self.ram_stub.add_response(
            "list_resources",
            {"resources": items},
            {"resourceOwner": "OTHER-ACCOUNTS", "resourceShareArns": [SHARE]},
        )
        if visible:
            response = domains_response(self.tgw_id)
            response["TransitGatewayMulticastDomains"] = response["TransitGatewayMulticastDomains"][:1]
            self.multicast.expect(
                "describe_transit_gateway_multicast_domains",
                response,
                {"TransitGatewayMulticastDomainIds": [DOMAIN_IDS["market-data"]]},
            )

    def join(self, timeout_s: float = 60.0) -> Any:
        clock = iter(float(t) for t in range(0, 10_000, 5))
        return join(
            self.aws(),
            SHARE,
            timeout_s=timeout_s,
            interval_s=5.0,
            progress=self.progress.append,
            sleep=self.slept.append,
            clock=lambda: next(clock),
        )


@pytest.fixture
def customer() -> Iterator[Customer]:
    with mock_aws():
        customer = Customer()
        with customer.ram_stub, customer.multicast:
            yield customer
            customer.ram_stub.assert_no_pending_responses()
            customer.multicast.stubber.assert_no_pending_responses()


def test_accepts_the_invitation_and_waits_for_the_resources(customer: Customer) -> None:
    customer.invitation("PENDING")
    customer.resources(visible=False)
    customer.resources(visible=True)

    result = customer.join()

    assert result.invitation == "accepted"
    assert result.transit_gateway_id == customer.tgw_id
    assert result.domain_ids == [DOMAIN_IDS["market-data"]]
    assert customer.progress[0] == "invitation: accepted"
    assert customer.progress[1].startswith("waiting for the shared transit gateway and domains")
    assert customer.slept == [5.0]


def test_second_run_reports_done_without_accepting_again(customer: Customer) -> None:
    customer.invitation("ACCEPTED")  # no accept call is stubbed: the Stubber fails on one
    customer.resources(visible=True)

    result = customer.join()

    assert result.invitation == "already accepted"
    assert customer.slept == []


def test_times_out_with_one_line(customer: Customer) -> None:
    customer.invitation("ACCEPTED")
    for _ in range(2):  # checked at 5 s and 10 s by the fake clock; 10 s is the timeout
        customer.resources(visible=False)

    with pytest.raises(AwsFailure) as raised:
        customer.join(timeout_s=10)

    assert raised.value.status is ExitStatus.ENVIRONMENT
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"account {MOTO_ACCOUNT}, region {REGION}, {SHARE}: ")
    assert "not visible after 10 s" in message


def test_rejected_invitation_is_a_failure(customer: Customer) -> None:
    customer.invitation("REJECTED")
    with pytest.raises(AwsFailure) as raised:
        customer.join()
    assert raised.value.status is ExitStatus.FAILURE
    assert "the invitation is rejected" in str(raised.value)


def test_cli_prints_next_steps(customer: Customer, monkeypatch: pytest.MonkeyPatch) -> None:
    customer.invitation("ACCEPTED")
    customer.resources(visible=True)
    monkeypatch.setattr(onboard_command, "make_aws", lambda region, profile: customer.aws())
    out, err = io.StringIO(), io.StringIO()

    code = cli.main(["onboard", "join", "--share-arn", SHARE, "--json"], cli.Console(out=out, err=err))

    assert code == ExitStatus.OK, err.getvalue()
    result = json.loads(out.getvalue())
    assert result["transit_gateway_id"] == customer.tgw_id
    assert result["region"] == REGION and result["account"] == MOTO_ACCOUNT


def test_cli_refuses_a_bad_share_arn() -> None:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["onboard", "join", "--share-arn", "tgw-0123"], cli.Console(out=out, err=err))
    assert code == ExitStatus.BAD_INPUT
    assert "--share-arn 'tgw-0123': not a RAM resource share ARN" in err.getvalue()


def test_refuses_to_run_in_the_provider_account(customer: Customer) -> None:
    own_share = SHARE.replace(PROVIDER, MOTO_ACCOUNT)
    with pytest.raises(AwsFailure) as raised:
        join(customer.aws(), own_share, timeout_s=1, interval_s=1, progress=customer.progress.append)
    assert raised.value.status is ExitStatus.BAD_INPUT
    assert "this account owns the share" in str(raised.value)
