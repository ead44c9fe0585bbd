"""A bare stack for construct tests: explicit env and pinned zones, so nothing is looked up."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2

ENV = cdk.Environment(account="111111111111", region="eu-west-2")


def isolated_vpc_stack() -> tuple[cdk.Stack, ec2.Vpc]:
    """A stack with a two-zone VPC of isolated subnets only."""
    stack = cdk.Stack(cdk.App(), "Test", env=ENV)
    vpc = ec2.Vpc(
        stack,
        "Vpc",
        availability_zones=["eu-west-2a", "eu-west-2b"],
        nat_gateways=0,
        subnet_configuration=[
            ec2.SubnetConfiguration(name="mc", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        ],
    )
    return stack, vpc
