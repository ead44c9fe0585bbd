"""The relay's path to the datacenter: routes in its subnets through the provider's gateway."""

from __future__ import annotations

from ipaddress import IPv4Network
from types import SimpleNamespace

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk.assertions import Template

from mcastkit.config import Config
from mcastkit.constructs.datacenter_route import DatacenterRoute


def test_the_example_routes_the_relay_subnets_through_its_virtual_private_gateway(
    example_app: SimpleNamespace, example_config: Config
) -> None:
    for region, stacks in example_app.stacks.items():
        relay = example_config.regions[region].relay
        assert relay is not None and relay.route_via
        template = Template.from_stack(stacks.network)
        (attachment_id, attachment) = next(
            iter(template.find_resources("AWS::EC2::VPCGatewayAttachment").items())
        )
        assert attachment["Properties"]["VpnGatewayId"] == relay.route_via
        routes = template.find_resources("AWS::EC2::Route")
        relay_subnets = example_config.regions[region].subnets_of(relay.domain)
        assert len(routes) == len(relay_subnets) * len(relay.datacenter_cidrs)
        for route in routes.values():
            assert route["Properties"]["GatewayId"] == relay.route_via
            assert route["Properties"]["DestinationCidrBlock"] in {str(c) for c in relay.datacenter_cidrs}
            assert attachment_id in route["DependsOn"]


def test_a_transit_gateway_route_attaches_the_vpc_to_that_gateway_first() -> None:
    """A route to a transit gateway the VPC is not attached to fails: the attachment is made here,
    in the same deploy, and every route waits for it."""
    stack = cdk.Stack(cdk.App(), "Test", env=cdk.Environment(account="111111111111", region="eu-west-2"))
    vpc = ec2.Vpc(stack, "Vpc", max_azs=1, subnet_configuration=[], nat_gateways=0)
    subnets = [
        ec2.PrivateSubnet(stack, name, vpc_id=vpc.vpc_id, availability_zone=zone, cidr_block=cidr)
        for name, zone, cidr in (("A", "eu-west-2a", "10.0.0.0/24"), ("B", "eu-west-2b", "10.0.1.0/24"))
    ]
    route = DatacenterRoute(
        stack,
        "Route",
        vpc=vpc,
        subnets=subnets,
        # 10.1.10.0/24 and 10.11.0.0/24 spell the same digits: their routes must still be two.
        datacenter_cidrs=[IPv4Network("10.1.10.0/24"), IPv4Network("10.11.0.0/24")],
        gateway_id="tgw-0123456789abcdef0",
    )
    template = Template.from_stack(stack)
    (attachment_id, attachment) = next(
        iter(template.find_resources("AWS::EC2::TransitGatewayAttachment").items())
    )
    assert attachment["Properties"]["TransitGatewayId"] == "tgw-0123456789abcdef0"
    assert len(attachment["Properties"]["SubnetIds"]) == 2  # one per zone
    routes = template.find_resources("AWS::EC2::Route")
    assert len(routes) == len(route.routes) == 4
    for resource in routes.values():
        assert resource["Properties"]["TransitGatewayId"] == "tgw-0123456789abcdef0"
        assert resource["DependsOn"] == [attachment_id]


def test_a_gateway_that_is_neither_is_refused() -> None:
    stack = cdk.Stack(cdk.App(), "Test")
    vpc = ec2.Vpc(stack, "Vpc", max_azs=1, subnet_configuration=[], nat_gateways=0)
    with pytest.raises(ValueError, match="expected a vgw- or tgw- id"):
        DatacenterRoute(
            stack, "Route", vpc=vpc, subnets=[], datacenter_cidrs=[], gateway_id="igw-0123456789abcdef0"
        )
