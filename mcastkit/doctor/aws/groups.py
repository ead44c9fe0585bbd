"""Per group: is the ENI a member in the Transit Gateway's eyes, and can anyone send?

``SearchTransitGatewayMulticastGroups`` lists the members (joined by IGMP, or registered:
``static``) and the registered sources of a group. In an IGMPv2 domain a member that the Transit
Gateway does not list has not been heard joining; in a static domain it has not been registered.

Inferred from the API, not documented in one place: in an IGMPv2 domain senders need no
registration (any ENI of an associated subnet may send), so an empty source list there is normal.
"""

from __future__ import annotations

from collections.abc import Sequence

from mcastkit.doctor.aws.domain import DomainOfSubnet
from mcastkit.doctor.aws.interface import Eni
from mcastkit.doctor.findings import Finding, Severity
from mcastkit.net.addresses import GroupPort
from mcastkit.onboard.aws import Aws

CHECK = "aws-membership"


def group_findings(
    aws: Aws, found: DomainOfSubnet, eni: Eni, interface: str, groups: Sequence[GroupPort]
) -> list[Finding]:
    findings: list[Finding] = []
    for group in groups:
        entries = aws.pages(
            "multicast",
            "search_transit_gateway_multicast_groups",
            "MulticastGroups",
            f"{found.domain_id} group {group.group}",
            TransitGatewayMulticastDomainId=found.domain_id,
            Filters=[{"Name": "group-ip-address", "Values": [group.group]}],
        )
        members = [e for e in entries if e.get("GroupMember")]
        sources = [e for e in entries if e.get("GroupSource")]
        findings.append(_member(found, eni, interface, group, members))
        findings.extend(_sources(found, group, sources))
    return findings


def _member(
    found: DomainOfSubnet, eni: Eni, interface: str, group: GroupPort, members: list[dict[str, object]]
) -> Finding:
    subject = f"{group.group} membership of {eni.eni_id}"
    mine = [m for m in members if m.get("NetworkInterfaceId") == eni.eni_id]
    if mine:
        kinds = ", ".join(sorted({str(m.get("MemberType", "?")) for m in mine}))
        return Finding(
            Severity.OK, CHECK, subject, f"a member ({kinds}); the group has {len(members)} member(s)"
        )
    if found.igmpv2:
        return Finding(
            Severity.PROBLEM,
            CHECK,
            subject,
            f"the Transit Gateway lists no membership of {eni.eni_id} ({len(members)} other member(s)): it "
            f"has not heard an IGMPv2 join for {group.group} from it, or the member missed 3 queries",
            f"make the host join {group.group} on {interface} with IGMPv2 (the local findings say what stops "
            "it; the security group and network ACL must pass IGMP both ways); the Transit Gateway queries "
            "every 2 minutes",
        )
    return Finding(
        Severity.PROBLEM,
        CHECK,
        subject,
        f"{eni.eni_id} is not registered as a member, and this static domain ignores IGMP joins",
        f"aws ec2 register-transit-gateway-multicast-group-members --transit-gateway-multicast-domain-id "
        f"{found.domain_id} --group-ip-address {group.group} --network-interface-ids {eni.eni_id} "
        "(members registered by hand must be deregistered by hand)",
    )


def _sources(found: DomainOfSubnet, group: GroupPort, sources: list[dict[str, object]]) -> list[Finding]:
    subject = f"{group.group} sources"
    if sources:
        enis = ", ".join(sorted(str(s.get("NetworkInterfaceId", "?")) for s in sources))
        return [Finding(Severity.OK, CHECK, subject, f"registered: {enis}")]
    if found.static_sources:
        return [
            Finding(
                Severity.PROBLEM,
                CHECK,
                subject,
                "no source is registered, and in this static domain only registered sources may send",
                "the domain owner registers the sender: aws ec2 "
                "register-transit-gateway-multicast-group-sources --transit-gateway-multicast-domain-id "
                f"{found.domain_id} --group-ip-address {group.group} --network-interface-ids SENDER-ENI "
                "(mcastkit config: regions.<region>.domains[].static_sources)",
            )
        ]
    return []
