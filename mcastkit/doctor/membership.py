"""Check 2: whether a socket on this host has joined each group on the multicast interface.

The Transit Gateway delivers a group to an ENI only after the host joins it (an IGMPv2 report),
and the host joins only while some socket holds the membership. Capture tools (tcpdump) and
plain UDP listeners (``nc -u -l``) never join. /proc/net/igmp lists the memberships of this
network namespace only: a receiver in a container joins in the container's namespace.
"""

from __future__ import annotations

from collections.abc import Sequence

from mcastkit.doctor.findings import Finding, Severity
from mcastkit.doctor.igmp_table import IgmpTable
from mcastkit.net.addresses import GroupPort

CHECK = "igmp-membership"


def membership_findings(table: IgmpTable, interface: str, groups: Sequence[GroupPort]) -> list[Finding]:
    """Per group asked for, where it is joined; without groups, what each interface holds."""
    if not groups:
        return _held(table, interface)
    return [_group(table, interface, group) for group in groups]


def _held(table: IgmpTable, interface: str) -> list[Finding]:
    findings = [
        Finding(Severity.OK, CHECK, f"{name} memberships", f"joined {', '.join(device.data_groups)}")
        for name, device in table.devices.items()
        if device.data_groups
    ]
    device = table.devices.get(interface)
    if device is None or not device.data_groups:
        findings.insert(
            0,
            Finding(
                Severity.WARN,
                CHECK,
                f"{interface} memberships",
                f"no socket in this network namespace has joined a group on {interface}, so the "
                "Transit Gateway sends it none",
                "pass --group GROUP:PORT to check a group, and start its receiver",
            ),
        )
    return findings


def _group(table: IgmpTable, interface: str, group: GroupPort) -> Finding:
    address = group.group
    subject = f"{address} on {interface}"
    holders = table.holders(address)
    if interface in holders:
        users = next(m.users for m in table.devices[interface].memberships if m.group == address)
        return Finding(Severity.OK, CHECK, subject, f"joined ({users} membership(s) on {interface})")
    receiver = f"mcastkit probe recv --passive --group {group} --interface {interface}"
    if holders:
        return Finding(
            Severity.PROBLEM,
            CHECK,
            subject,
            f"no socket joined {address} on {interface}, but one did on {', '.join(holders)}: the "
            f"receiver joined on the wrong interface (a join that names none follows the route for "
            f"{address})",
            f"have the receiver join on {interface} (its address or name, e.g. {receiver}), or route "
            f"the group by it: ip route add {address}/32 dev {interface}",
        )
    return Finding(
        Severity.PROBLEM,
        CHECK,
        subject,
        f"no socket on this host joined {address} on {interface} (nor on any other interface of this "
        "network namespace): the receiver does not join (tools like tcpdump and nc do not), or it runs "
        "in another network namespace",
        f"start a receiver that joins {address} on {interface}, e.g. {receiver}; for a container's "
        "receiver, run the doctor in its namespace (--netns NAME, or nsenter -t PID -n)",
    )
