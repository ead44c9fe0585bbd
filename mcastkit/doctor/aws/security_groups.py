"""The ENI's security groups against the member flows: a flow passes when the groups' rules, taken
together, cover its far end (rules of several groups add up; an ``all`` rule, ``-1``, covers every
protocol and port).

Rules that name a security group or a prefix list instead of a CIDR are not evaluated: a
security group cannot stand for the senders of multicast, even in the same VPC (AWS Transit
Gateway guide, "Multicast considerations"), and a prefix list would need another call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mcastkit.config.rules import IGMP
from mcastkit.doctor.aws.flows import (
    ANYWHERE,
    Flow,
    IPv4Network,
    port_matches,
    protocol_matches,
    shown,
    subtract,
)
from mcastkit.doctor.findings import Finding, Severity

CHECK = "aws-security-group"


def security_group_findings(groups: Sequence[dict[str, Any]], flows: Sequence[Flow]) -> list[Finding]:
    """One finding per flow: allowed (ok) or not (a problem whose fix adds the rule to the first group)."""
    ids = [str(g.get("GroupId", "?")) for g in groups]
    names = f"security group{'s' * (len(ids) != 1)} {', '.join(ids) or '(none)'}"
    return [_flow(groups, ids, names, flow) for flow in flows]


def _allowing(groups: Sequence[dict[str, Any]], flow: Flow) -> tuple[list[IPv4Network], bool]:
    """The CIDRs the groups' rules allow ``flow`` from (or to), and whether other rules were skipped."""
    cidrs: list[IPv4Network] = []
    skipped = False
    for group in groups:
        for rule in group.get("IpPermissionsEgress" if flow.egress else "IpPermissions", []):
            if not protocol_matches(rule.get("IpProtocol"), flow.protocol):
                continue
            if not port_matches(rule.get("FromPort"), rule.get("ToPort"), flow.port):
                continue
            cidrs += [IPv4Network(r["CidrIp"]) for r in rule.get("IpRanges", []) if "CidrIp" in r]
            skipped |= bool(rule.get("UserIdGroupPairs") or rule.get("PrefixListIds"))
    return cidrs, skipped


def _flow(groups: Sequence[dict[str, Any]], ids: list[str], names: str, flow: Flow) -> Finding:
    subject = f"{names} {flow}"
    cidrs, skipped = _allowing(groups, flow)
    if flow.peer is None:
        if cidrs:
            return Finding(
                Severity.OK,
                CHECK,
                subject,
                f"{flow.purpose} are allowed from {shown(cidrs)} (pass --source to check the senders)",
            )
        missing = [ANYWHERE]
    else:
        missing = [flow.peer]
        for cidr in cidrs:
            missing, _ = subtract(missing, cidr)
        if not missing:
            return Finding(Severity.OK, CHECK, subject, f"{flow.purpose} are allowed")
    part = "" if flow.peer is None or missing == [flow.peer] else f" (not from {shown(missing)})"
    unevaluated = (
        "; rules naming security groups or prefix lists were not evaluated (multicast needs CIDR rules)"
        if skipped
        else ""
    )
    return Finding(
        Severity.PROBLEM,
        CHECK,
        subject,
        f"no rule allows {flow.purpose}{part}{unevaluated}",
        _fix(ids[0] if ids else "sg-...", flow),
    )


def _fix(group_id: str, flow: Flow) -> str:
    command = (
        f"aws ec2 authorize-security-group-{'egress' if flow.egress else 'ingress'} --group-id {group_id}"
    )
    if flow.protocol == IGMP:
        return (
            f"{command} --protocol 2 --cidr {flow.peer} (mcastkit's members security group has this rule: "
            "attach it to the ENI)"
        )
    sender = "SENDER-CIDR" if flow.peer is None else str(flow.peer)
    return (
        f"{command} --protocol udp --port {flow.port} --cidr {sender} (in mcastkit's members security "
        "group: list the senders in regions.<region>.domains[].source_cidrs of the config)"
    )
