"""MulticastVpc, MulticastTransitGateway, MulticastDomain and DomainShare."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from mcastkit.config import Config, Domain, Subnet
from mcastkit.constructs import DomainShare, MulticastDomain, MulticastTransitGateway, MulticastVpc
from mcastkit.constructs.multicast_domain import domain_options
from mcastkit.stacks.base import RegionStack

ZONES = ["eu-west-2a", "eu-west-2b"]
SUBNETS = [
    Subnet(cidr="10.20.0.0/24", availability_zone="eu-west-2a", domain="market-data"),
    Subnet(cidr="10.20.1.0/24", availability_zone="eu-west-2b", domain="market-data"),
    Subnet(cidr="10.20.10.0/24", availability_zone="eu-west-2a", domain="reference-data"),
]
STATIC = Domain.model_validate(
    {
        "name": "static-feed",
        "mode": "static",
        "auto_accept_shared_associations": True,
        "source_cidrs": ["10.20.0.0/24"],
        "static_sources": ["eni-0123456789abcdef0", "eni-0fedcba9876543210"],
        "static_members": ["eni-0aaaaaaaaaaaaaaa1"],
        "groups": [
            {"name": "a", "address": "239.1.1.1", "port": 40001},
            {"name": "b", "address": "239.1.1.2", "port": 40002},
        ],
    }
)


def _stack() -> RegionStack:
    env = cdk.Environment(account="111111111111", region="eu-west-2")
    return RegionStack(cdk.App(), "Test", availability_zones=ZONES, env=env)


@pytest.fixture(scope="module")
def network(example_config: Config) -> tuple[MulticastVpc, MulticastTransitGateway, Template]:
    stack = _stack()
    vpc = MulticastVpc(stack, "Network", cidr="10.20.0.0/16", availability_zones=ZONES, subnets=SUBNETS)
    gateway = MulticastTransitGateway(
        stack, "Gateway", vpc=vpc.vpc, attachment_subnets=vpc.endpoint_subnets, amazon_side_asn=64600
    )
    domains = example_config.regions["eu-west-2"].domains
    MulticastDomain(
        stack,
        "MarketData",
        transit_gateway_id=gateway.transit_gateway_id,
        attachment_id=gateway.attachment_id,
        domain=domains[0],
        subnets=vpc.subnets[:2],
    )
    MulticastDomain(
        stack,
        "Static",
        transit_gateway_id=gateway.transit_gateway_id,
        attachment_id=gateway.attachment_id,
        domain=STATIC,
        subnets=vpc.subnets[2:],
    )
    return vpc, gateway, Template.from_stack(stack)


def test_vpc_has_exactly_the_configured_subnets_and_no_internet_path(network: Any) -> None:
    _, _, template = network
    subnets = {
        (
            r["Properties"]["CidrBlock"],
            r["Properties"]["AvailabilityZone"],
            r["Properties"]["MapPublicIpOnLaunch"],
        )
        for r in template.find_resources("AWS::EC2::Subnet").values()
    }
    assert subnets == {(str(s.cidr), s.availability_zone, False) for s in SUBNETS}
    for absent in ("AWS::EC2::InternetGateway", "AWS::EC2::NatGateway", "AWS::EC2::EIP", "AWS::EC2::Route"):
        template.resource_count_is(absent, 0)


def test_endpoints_sit_in_the_first_subnet_of_each_zone(network: Any) -> None:
    vpc, _, template = network
    assert [s.availability_zone for s in vpc.endpoint_subnets] == ZONES
    assert vpc.endpoint_subnets == vpc.subnets[:2]
    endpoints = template.find_resources(
        "AWS::EC2::VPCEndpoint", {"Properties": {"VpcEndpointType": "Interface"}}
    )
    services = {r["Properties"]["ServiceName"] for r in endpoints.values()}
    assert {
        "com.amazonaws.eu-west-2.ecs",
        "com.amazonaws.eu-west-2.ecs-agent",
        "com.amazonaws.eu-west-2.ecr.dkr",
    } <= {s if isinstance(s, str) else "" for s in services}
    for endpoint in endpoints.values():
        assert len(endpoint["Properties"]["SubnetIds"]) == 2
        assert endpoint["Properties"]["PrivateDnsEnabled"] is True
    template.has_resource_properties("AWS::EC2::VPCEndpoint", {"VpcEndpointType": "Gateway"})
    template.has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {
            "GroupDescription": Match.string_like_regexp("endpoints"),
            "SecurityGroupIngress": [
                Match.object_like({"CidrIp": "10.20.0.0/16", "FromPort": 443, "ToPort": 443})
            ],
        },
    )


def test_flow_logs_go_to_a_kms_encrypted_log_group(network: Any) -> None:
    _, _, template = network
    template.has_resource_properties(
        "AWS::EC2::FlowLog",
        {"ResourceType": "VPC", "TrafficType": "ALL", "LogDestinationType": "cloud-watch-logs"},
    )
    (key_id,) = template.find_resources("AWS::KMS::Key", {"Properties": {"EnableKeyRotation": True}})
    template.has_resource(
        "AWS::Logs::LogGroup",
        {
            "Properties": {"KmsKeyId": {"Fn::GetAtt": [key_id, "Arn"]}, "RetentionInDays": 365},
            "DeletionPolicy": "Retain",
        },
    )


def test_transit_gateway_is_multicast_only(network: Any) -> None:
    _, _, template = network
    template.has_resource_properties(
        "AWS::EC2::TransitGateway",
        {
            "MulticastSupport": "enable",
            "AmazonSideAsn": 64600,
            "AutoAcceptSharedAttachments": "disable",
            "DefaultRouteTableAssociation": "disable",
            "DefaultRouteTablePropagation": "disable",
        },
    )


def test_attachment_takes_one_subnet_per_zone(network: Any) -> None:
    vpc, _, template = network
    (attachment,) = template.find_resources("AWS::EC2::TransitGatewayAttachment").values()
    refs = [s["Ref"] for s in attachment["Properties"]["SubnetIds"]]
    assert len(refs) == 2
    stack = cdk.Stack.of(vpc)
    assert refs == [stack.resolve(s.subnet_id)["Ref"] for s in vpc.subnets[:2]]


def test_attachment_refuses_two_subnets_in_one_zone() -> None:
    stack = _stack()
    vpc = MulticastVpc(stack, "Network", cidr="10.20.0.0/16", availability_zones=ZONES, subnets=SUBNETS)
    with pytest.raises(
        ValueError, match=r"one subnet per availability zone.*eu-west-2a', 'eu-west-2b', 'eu-west-2a"
    ):
        MulticastTransitGateway(stack, "Gateway", vpc=vpc.vpc, attachment_subnets=vpc.subnets)


def test_domain_options_render_with_pascal_case_keys(network: Any) -> None:
    _, _, template = network
    rendered = [
        r["Properties"]["Options"]
        for r in template.find_resources("AWS::EC2::TransitGatewayMulticastDomain").values()
    ]
    assert {
        "Igmpv2Support": "enable",
        "StaticSourcesSupport": "disable",
        "AutoAcceptSharedAssociations": "disable",
    } in rendered
    assert {
        "Igmpv2Support": "disable",
        "StaticSourcesSupport": "enable",
        "AutoAcceptSharedAssociations": "enable",
    } in rendered
    for options in rendered:
        assert set(options) == {"Igmpv2Support", "StaticSourcesSupport", "AutoAcceptSharedAssociations"}


def test_domain_options_function_never_enables_both(example_config: Config) -> None:
    for domain in [*example_config.regions["eu-west-2"].domains, STATIC]:
        options = domain_options(domain)
        assert {options["Igmpv2Support"], options["StaticSourcesSupport"]} == {"enable", "disable"}


def test_one_association_per_subnet(network: Any) -> None:
    _, _, template = network
    template.resource_count_is("AWS::EC2::TransitGatewayMulticastDomainAssociation", 3)


@pytest.mark.parametrize(
    ("type_", "field"),
    [
        ("AWS::EC2::TransitGatewayMulticastGroupSource", "static_sources"),
        ("AWS::EC2::TransitGatewayMulticastGroupMember", "static_members"),
    ],
)
def test_static_sources_and_members_are_registered_for_every_group(
    network: Any, type_: str, field: str
) -> None:
    """With IGMPv2 off the gateway forwards only from registered sources to registered members."""
    _, _, template = network
    registered = template.find_resources(type_)
    pairs = {
        (r["Properties"]["NetworkInterfaceId"], r["Properties"]["GroupIpAddress"])
        for r in registered.values()
    }
    assert pairs == {(eni, str(g.address)) for eni in getattr(STATIC, field) for g in STATIC.groups}
    for resource in registered.values():
        assert resource["DependsOn"] and all("Association" in d for d in resource["DependsOn"])


def test_domain_share_has_exactly_the_given_principals() -> None:
    stack = _stack()
    DomainShare(
        stack,
        "Share",
        name="venue-md-eu-west-2-market-data",
        resource_arns=["arn:aws:ec2:eu-west-2:111111111111:transit-gateway/tgw-1", "arn:domain"],
        principals=["222222222222", "333333333333"],
        allow_external_principals=True,
    )
    Template.from_stack(stack).has_resource_properties(
        "AWS::RAM::ResourceShare",
        {
            "Name": "venue-md-eu-west-2-market-data",
            "Principals": ["222222222222", "333333333333"],
            "ResourceArns": ["arn:aws:ec2:eu-west-2:111111111111:transit-gateway/tgw-1", "arn:domain"],
            "AllowExternalPrincipals": True,
        },
    )


@pytest.mark.parametrize(
    ("principals", "message"),
    [([], "no principals"), (["222222222222", "222222222222"], "repeated principals")],
)
def test_domain_share_refuses_empty_or_repeated_principals(principals: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DomainShare(
            _stack(),
            "Share",
            name="s",
            resource_arns=["a"],
            principals=principals,
            allow_external_principals=False,
        )
