"""cdk-nag AwsSolutionsChecks over every stack of the example: no unacknowledged finding."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

#: Every acknowledgment the stacks make: (construct path below the stack, rule id).
#: A new one must be added here on purpose, with its reason next to the resource.
EXPECTED_ACKNOWLEDGMENTS = {
    ("Members", "AwsSolutions-VPC3"),
    ("Cluster/InstanceRole", "AwsSolutions-IAM5[Action::ecs:Submit*]"),
    ("Cluster/InstanceRole", "AwsSolutions-IAM5[Resource::*]"),
    ("Cluster/AutoScalingGroup", "AwsSolutions-AS3"),
}


def _findings(report: Any) -> list[str]:
    return [
        f"{violation.rule_name} at {resource.construct_path}: {violation.description}"
        for violation in report.violations
        for resource in violation.violating_resources
    ]


def test_example_has_no_unacknowledged_findings(example_app: Any) -> None:
    report = AwsSolutionsChecks().validate_scope(example_app.app)
    assert _findings(report) == []
    assert report.success


#: Top-level constructs of the core stacks (other constructs, e.g. the relay, own theirs).
CORE_CONSTRUCTS = ("Network", "Gateway", "Domain", "Members", "Cluster", "Share")


def _acknowledgments(root: IConstruct) -> dict[tuple[str, str], str]:
    """(path below the stack, rule id) -> reason, for every acknowledgment under ``root``."""
    found = {}
    for construct in root.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                path = construct.node.path.split("/", 1)[1]
                for key, reason in entry.data.items():
                    found[(path, key.removeprefix("Annotation::"))] = reason
    return found


def test_core_acknowledgments_are_the_reviewed_ones_and_carry_reasons(example_app: Any) -> None:
    for group in example_app.stacks.values():
        found: dict[tuple[str, str], str] = {}
        for stack in (group.network, group.sharing, group.compute):
            found |= _acknowledgments(stack)
        assert all(len(reason) > 40 for reason in found.values()), found
        # aws-cdk-lib acknowledges some of its own CloudFormation-Validate rules; ours are cdk-nag's.
        core = {k for k in found if k[0].startswith(CORE_CONSTRUCTS) and k[1].startswith("AwsSolutions-")}
        assert core == EXPECTED_ACKNOWLEDGMENTS


def test_the_pack_reports_what_it_should() -> None:
    """Guard against a silently idle pack: an open security group is a finding."""
    app = cdk.App()
    stack = cdk.Stack(app, "Open", env=cdk.Environment(account="111111111111", region="eu-west-2"))
    vpc = ec2.Vpc(stack, "Vpc", availability_zones=["eu-west-2a"], nat_gateways=0, subnet_configuration=[])
    group = ec2.SecurityGroup(stack, "Open", vpc=vpc)
    group.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(22))
    findings = _findings(AwsSolutionsChecks().validate_scope(app))
    assert any(f.startswith("AwsSolutions-EC23 at Open/Open") for f in findings), findings
