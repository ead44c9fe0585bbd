"""The AWS checks in order: the ENI, its subnet's domain and association, each group's members and
sources, the ENI's security groups, the subnet's network ACL.

Reads only. The calls need ``ec2:DescribeNetworkInterfaces``,
``ec2:DescribeTransitGatewayMulticastDomains``, ``ec2:GetTransitGatewayMulticastDomainAssociations``,
``ec2:SearchTransitGatewayMulticastGroups``, ``ec2:DescribeSecurityGroups`` and
``ec2:DescribeNetworkAcls``; a refused one ends the run with one line naming it
(:meth:`mcastkit.onboard.aws.Aws.call`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import botocore.session

from mcastkit.doctor.aws.domain import domain_findings, find_domain
from mcastkit.doctor.aws.flows import member_flows
from mcastkit.doctor.aws.groups import group_findings
from mcastkit.doctor.aws.imds import InstanceMetadata
from mcastkit.doctor.aws.interface import find_eni
from mcastkit.doctor.aws.network_acl import acl_findings
from mcastkit.doctor.aws.security_groups import security_group_findings
from mcastkit.doctor.findings import Finding, Severity
from mcastkit.doctor.options import DoctorOptions
from mcastkit.doctor.procfs import ProcFs
from mcastkit.errors import EnvironmentFailure
from mcastkit.onboard.aws import Aws

CHECK_ENI = "aws-eni"

AwsFactory = Callable[[str], Aws]


def configured_region() -> str | None:
    """The region boto3 would use (AWS_REGION, AWS_DEFAULT_REGION, the profile's), if any."""
    region = botocore.session.Session().get_config_variable("region")
    return str(region) if region else None


def aws_findings(
    options: DoctorOptions,
    proc: ProcFs,
    interface: str,
    make_aws: AwsFactory,
    metadata: Callable[[], InstanceMetadata] = InstanceMetadata,
) -> Iterator[Finding]:
    region = options.region or configured_region()
    if region is None:
        raise EnvironmentFailure("--aws: no AWS region: pass --region, or set AWS_REGION")
    aws = make_aws(region)
    eni = find_eni(aws, proc, interface, options.eni, metadata)
    yield Finding(
        Severity.OK,
        CHECK_ENI,
        f"{interface} ENI",
        f"{eni.eni_id} (found by {eni.found_by}): {eni.address} in subnet {eni.subnet_id} of {eni.vpc_id}, "
        f"security groups {', '.join(eni.security_groups) or 'none'}",
    )
    found = find_domain(aws, options.domain, eni.subnet_id)
    yield from domain_findings(
        found, eni, asked=options.domain, region=region, groups_given=bool(options.groups)
    )
    if found.domain is not None and options.groups:
        yield from group_findings(aws, found, eni, interface, options.groups)
    flows = member_flows(options.groups, options.sources)
    security_groups = (
        aws.pages(
            "ec2",
            "describe_security_groups",
            "SecurityGroups",
            ", ".join(eni.security_groups),
            GroupIds=list(eni.security_groups),
        )
        if eni.security_groups
        else []
    )
    yield from security_group_findings(security_groups, flows)
    acls = aws.pages(
        "ec2",
        "describe_network_acls",
        "NetworkAcls",
        f"subnet {eni.subnet_id}",
        Filters=[{"Name": "association.subnet-id", "Values": [eni.subnet_id]}],
    )
    if acls:
        yield from acl_findings(acls[0], flows)
    else:
        yield Finding(
            Severity.WARN,
            "aws-network-acl",
            f"subnet {eni.subnet_id}",
            "ec2:DescribeNetworkAcls returned no network ACL for the subnet; its entries were not checked",
        )
