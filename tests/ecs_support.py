"""Shared set-up for the ECS wiring tests: a small region config and the stack the
relay and probe services run in (VPC, member rules, IGMPv2 cluster), with an explicit
env and pinned zones so nothing is looked up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs

from mcastkit import config
from mcastkit.constructs.cluster import Igmpv2Cluster
from mcastkit.constructs.member_rules import MemberRules

ACCOUNT = "111111111111"
REGION = "eu-west-2"
ZONES = ["eu-west-2a", "eu-west-2b", "eu-west-2c"]


def config_data(**sections: Any) -> dict[str, Any]:
    """Config data of one region with two domains; ``sections`` adds e.g. ``relay=`` or ``probe=``."""
    return {
        "project": "venue-md",
        "provider_account": ACCOUNT,
        "regions": {
            REGION: {
                "availability_zones": ZONES,
                "vpc_cidr": "10.20.0.0/16",
                # Room for the relay (twice while redeployed) and a probe: 2 tasks per c6in.large.
                "capacity": {"instance_type": "c6in.large", "min": 3, "max": 4},
                "subnets": [
                    {"cidr": "10.20.0.0/24", "availability_zone": ZONES[0], "domain": "market-data"},
                    {"cidr": "10.20.1.0/24", "availability_zone": ZONES[1], "domain": "market-data"},
                    {"cidr": "10.20.10.0/24", "availability_zone": ZONES[2], "domain": "reference-data"},
                ],
                "domains": [
                    {
                        "name": "market-data",
                        "source_cidrs": ["10.20.0.0/24", "10.20.1.0/24"],
                        "groups": [
                            {"name": "btc-book", "address": "239.10.1.1", "port": 30001},
                            {"name": "trades", "address": "239.10.1.3", "port": 30003},
                            {"name": "probe", "address": "239.10.1.20", "port": 30020, "probe": True},
                        ],
                    },
                    {
                        "name": "reference-data",
                        "source_cidrs": ["10.20.10.0/24"],
                        "groups": [{"name": "instruments", "address": "239.10.2.1", "port": 31001}],
                    },
                ],
                **sections,
            }
        },
    }


def region_config(**sections: Any) -> config.Region:
    return config.parse_config(config_data(**sections)).regions[REGION]


class ClusterStack:
    """An app and a stack holding the region's VPC and subnets, the member rules and the cluster."""

    def __init__(self, region: config.Region, outdir: Path | None = None) -> None:
        self.region = region
        self.app = cdk.App(outdir=str(outdir) if outdir else None)
        self.stack = cdk.Stack(self.app, "Test", env=cdk.Environment(account=ACCOUNT, region=REGION))
        self.vpc = ec2.Vpc(
            self.stack,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(str(region.vpc_cidr)),
            availability_zones=ZONES,
            subnet_configuration=[],
            nat_gateways=0,
        )
        self.subnets = {
            spec.cidr: ec2.PrivateSubnet(
                self.stack,
                f"Subnet{index}",
                vpc_id=self.vpc.vpc_id,
                availability_zone=spec.availability_zone,
                cidr_block=str(spec.cidr),
            )
            for index, spec in enumerate(region.subnets)
        }
        self.members = MemberRules(
            self.stack,
            "MemberRules",
            vpc=self.vpc,
            subnets=list(self.subnets.values()),
            domains=region.domains,
        )
        self.cluster = Igmpv2Cluster(
            self.stack,
            "Cluster",
            vpc=self.vpc,
            subnets=list(self.subnets.values()),
            security_group=self.members.security_group,
        )

    def subnets_of(self, domain: str) -> list[ec2.ISubnet]:
        return [self.subnets[s.cidr] for s in self.region.subnets_of(domain)]

    def logical_id(self, construct: Any) -> str:
        return self.stack.get_logical_id(construct.node.default_child)


def findings_under(report: Any, prefix: str) -> list[str]:
    """The cdk-nag findings of a validation report whose construct path starts with ``prefix``."""
    return [
        f"{violation.rule_name} at {resource.construct_path}"
        for violation in report.violations
        for resource in violation.violating_resources
        if resource.construct_path and resource.construct_path.startswith(prefix)
    ]


def bare_service_args() -> tuple[cdk.Stack, ec2.IVpc, dict[str, Any]]:
    """A throwaway stack and VPC, and the arguments every service construct takes (a plain
    cluster, isolated subnets, a security group, a registry image): for tests where the
    construct must refuse its other arguments before building anything."""
    stack = cdk.Stack(cdk.App(), "Bad", env=cdk.Environment(account=ACCOUNT, region=REGION))
    vpc = ec2.Vpc(
        stack,
        "Vpc",
        availability_zones=ZONES,
        subnet_configuration=[
            ec2.SubnetConfiguration(name="Multicast", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        ],
    )
    return (
        stack,
        vpc,
        {
            "cluster": ecs.Cluster(stack, "Cluster", vpc=vpc),
            "subnets": vpc.isolated_subnets,
            "members_security_group": ec2.SecurityGroup(stack, "Members", vpc=vpc),
            "image": ecs.ContainerImage.from_registry("public.ecr.aws/example/mcastkit:test"),
        },
    )
