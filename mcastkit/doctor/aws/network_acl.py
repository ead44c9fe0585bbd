"""The ENI subnet's network ACL against the member flows, evaluated as AWS does: the entries of one
direction in ascending rule number, the first that matches a packet decides, and a packet no entry
matches is denied (the ``*`` rule, which DescribeNetworkAcls lists as 32767). ACLs are stateless,
so inbound and outbound are separate questions.

A flow's far end can be a whole CIDR: each part of it gets the decision of the first entry that
covers that part, so an early deny of a /28 inside an allowed /24 is found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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

CHECK = "aws-network-acl"
#: The rule number of the ``*`` entry that ends every ACL.
LAST_RULE = 32767
_STEP = 10


@dataclass(frozen=True)
class Decision:
    network: IPv4Network
    allowed: bool
    #: The rule number that decided; ``None``: no entry matched.
    rule: int | None


def _entries(acl: dict[str, Any], egress: bool) -> list[dict[str, Any]]:
    entries = [e for e in acl.get("Entries", []) if bool(e.get("Egress")) is egress and e.get("CidrBlock")]
    return sorted(entries, key=lambda e: int(e.get("RuleNumber", LAST_RULE)))


def evaluate(acl: dict[str, Any], flow: Flow) -> list[Decision]:
    """What the ACL decides for each part of the flow's far end (all of 0.0.0.0/0 without one)."""
    remaining = [flow.peer or ANYWHERE]
    decisions: list[Decision] = []
    for entry in _entries(acl, flow.egress):
        if not protocol_matches(entry.get("Protocol"), flow.protocol):
            continue
        ports = entry.get("PortRange") or {}
        if not port_matches(ports.get("From"), ports.get("To"), flow.port):
            continue
        remaining, taken = subtract(remaining, IPv4Network(entry["CidrBlock"]))
        allowed = str(entry.get("RuleAction")) == "allow"
        decisions += [Decision(n, allowed, int(entry["RuleNumber"])) for n in taken]
        if not remaining:
            break
    return decisions + [Decision(n, False, None) for n in remaining]


def acl_findings(acl: dict[str, Any], flows: Sequence[Flow]) -> list[Finding]:
    return [_flow(acl, flow) for flow in flows]


def _flow(acl: dict[str, Any], flow: Flow) -> Finding:
    acl_id = str(acl.get("NetworkAclId", "acl-?"))
    subject = f"network ACL {acl_id} {flow}"
    decisions = evaluate(acl, flow)
    allowed = [d for d in decisions if d.allowed]
    denied = sorted((d for d in decisions if not d.allowed), key=lambda d: d.rule or LAST_RULE + 1)
    rules = ", ".join(str(n) for n in sorted({d.rule for d in allowed if d.rule is not None}))
    if flow.peer is None and allowed:
        return Finding(
            Severity.OK,
            CHECK,
            subject,
            f"{flow.purpose} are allowed from {shown(d.network for d in allowed)} by rule {rules} (pass "
            "--source to check the senders)",
        )
    if not denied:
        return Finding(Severity.OK, CHECK, subject, f"{flow.purpose} are allowed by rule {rules}")
    first = denied[0]
    if first.rule is None:
        by = "no entry allows them (the implicit deny)"
    elif first.rule == LAST_RULE:
        by = "no entry allows them (the last rule, *, denies)"
    else:
        by = f"rule {first.rule} denies them before any entry allows them"
    part = (
        ""
        if flow.peer is None or [d.network for d in denied] == [flow.peer]
        else (f" (from {shown(d.network for d in denied)})")
    )
    stateless = "; ACLs are stateless: outbound needs its own entry" if flow.egress else ""
    return Finding(
        Severity.PROBLEM,
        CHECK,
        subject,
        f"{flow.purpose}: {by}{part}{stateless}",
        _fix(acl, acl_id, flow, first.rule),
    )


def _free_rule_number(acl: dict[str, Any], egress: bool, before: int | None) -> int | None:
    """A free rule number that comes before ``before`` (``None`` or the last rule: after the others)."""
    used = {int(e["RuleNumber"]) for e in acl.get("Entries", []) if bool(e.get("Egress")) is egress}
    if before is None or before >= LAST_RULE:
        top = max((n for n in used if n < LAST_RULE), default=0)
        number = (top // _STEP + 1) * _STEP
        return number if number < LAST_RULE else None
    return next((n for n in range(before - 1, 0, -1) if n not in used), None)


def _fix(acl: dict[str, Any], acl_id: str, flow: Flow, deciding: int | None) -> str:
    number = _free_rule_number(acl, flow.egress, deciding)
    if number is None:
        return f"renumber the entries of {acl_id}: no rule number is free before {deciding}"
    protocol = "2" if flow.protocol == IGMP else f"17 --port-range From={flow.port},To={flow.port}"
    cidr = "SENDER-CIDR" if flow.peer is None else str(flow.peer)
    mcastkit = (
        "mcastkit's members network ACL has this entry"
        if flow.protocol == IGMP
        else "in mcastkit's members network ACL: list the senders in regions.<region>.domains[].source_cidrs"
    )
    direction = "egress" if flow.egress else "ingress"
    return (
        f"aws ec2 create-network-acl-entry --network-acl-id {acl_id} --{direction} --rule-number {number} "
        f"--protocol {protocol} --cidr-block {cidr} --rule-action allow ({mcastkit})"
    )
