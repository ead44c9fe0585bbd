"""The network ACL entries the sequenced streams need in the multicast subnets."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from mcastkit.config import Stream
from mcastkit.config.rules import STREAM_ACL_FIRST_RULE, STREAM_ACL_LAST_RULE, stream_acl_plan
from mcastkit.constructs.member_rules import acl_entry


class StreamAcl(Construct):
    """Entries of :func:`mcastkit.config.rules.stream_acl_plan` in the members' network ACL, with rule
    numbers 10-49 (below the relay's and the members'): replay TCP, the journal's NFS and MoldUDP64
    re-requests, each way with the VPC's CIDR only.

    Args:
        network_acl: the multicast subnets' network ACL (:attr:`MemberRules.network_acl`).
        streams: the region's streams (at least one).
        vpc_cidr: the VPC's CIDR.

    Attributes:
        inbound_rules, outbound_rules: the plan; entries: the resources.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        network_acl: ec2.INetworkAcl,
        streams: Sequence[Stream],
        vpc_cidr: IPv4Network,
    ) -> None:
        super().__init__(scope, id_)
        if not streams:
            raise ValueError("StreamAcl needs at least one stream")
        self.inbound_rules, self.outbound_rules = stream_acl_plan(streams, vpc_cidr)
        self.entries: list[ec2.CfnNetworkAclEntry] = []
        for rules in (self.inbound_rules, self.outbound_rules):
            if STREAM_ACL_FIRST_RULE + len(rules) - 1 > STREAM_ACL_LAST_RULE:
                raise ValueError(
                    f"streams: {len(rules)} network ACL entries need more rule numbers than "
                    f"{STREAM_ACL_FIRST_RULE}-{STREAM_ACL_LAST_RULE}; use contiguous replay ports"
                )
            for number, rule in enumerate(rules, start=STREAM_ACL_FIRST_RULE):
                self.entries.append(
                    acl_entry(
                        self, f"{'Egress' if rule.egress else 'Ingress'}{number}", network_acl, number, rule
                    )
                )
        cdk.Validations.of(self).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-VPC3",
                reason="The multicast subnets' network ACL (MemberRules) admits multicast, HTTPS to the "
                "endpoints and its return traffic; "
                "these entries admit only the streams' replay TCP, the journals' NFS and MoldUDP64 "
                "re-requests, each way with the VPC's own CIDR.",
            )
        )
