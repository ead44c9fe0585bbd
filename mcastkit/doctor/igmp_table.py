"""``/proc/net/igmp``: the groups each interface holds and the IGMP version it speaks.

The kernel (``igmp_mc_seq_show`` in net/ipv4/igmp.c) prints a header, then per device with at
least one membership a device line and one indented line per group::

    Idx	Device    : Count Querier	Group    Users Timer	Reporter
    4	eth0      :     2      V3
                                010A0AEF     1 0:00000000		0

``Querier`` is the version the device speaks now: ``V1`` or ``V2`` when forced by
``force_igmp_version`` or when a querier of that version was heard recently, else ``V3``.
``Group`` is the group's address as it lies in memory (network order) printed as a host-order
number, so on a little-endian machine 239.10.10.1 reads ``010A0AEF``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from mcastkit.doctor.procfs import ByteOrder, kernel_address

PROC_NET_IGMP = "proc/net/igmp"
#: Every host is a member of 224.0.0.1 on every multicast interface; it says nothing.
ALL_HOSTS = "224.0.0.1"

_DEVICE = re.compile(r"^(?P<index>\d+)\s+(?P<name>[^\s:]+)\s*:\s*(?P<count>\d+)\s+(?P<querier>\S+)\s*$")
_GROUP = re.compile(
    r"^\s+(?P<group>[0-9A-Fa-f]{8})\s+(?P<users>\d+)\s+(?P<running>[01]):(?P<timer>[0-9A-Fa-f]+)"
    r"\s+(?P<reporter>\d+)\s*$"
)


@dataclass(frozen=True)
class Membership:
    group: str
    #: Sockets (and kernel users) holding the membership.
    users: int
    #: A report is scheduled (the timer runs).
    timer_running: bool
    #: This host sent the last report for the group on the link.
    reporter: bool


@dataclass(frozen=True)
class IgmpDevice:
    index: int
    name: str
    querier: str
    memberships: tuple[Membership, ...]

    @property
    def groups(self) -> list[str]:
        return [m.group for m in self.memberships]

    @property
    def data_groups(self) -> list[str]:
        """The groups other than all-hosts (224.0.0.1), which every multicast interface holds."""
        return [g for g in self.groups if g != ALL_HOSTS]


@dataclass(frozen=True)
class IgmpTable:
    devices: Mapping[str, IgmpDevice]
    #: Lines that are neither a device nor a group line (or a group line before any device).
    unreadable: tuple[str, ...] = ()

    def holders(self, group: str) -> list[str]:
        """The devices on which some socket holds ``group``."""
        return [name for name, device in self.devices.items() if group in device.groups]


def parse_igmp_table(text: str, byteorder: ByteOrder = sys.byteorder) -> IgmpTable:
    """The devices and memberships of ``/proc/net/igmp`` text, read on a machine of ``byteorder``."""
    devices: dict[str, IgmpDevice] = {}
    unreadable: list[str] = []
    current: tuple[int, str, str] | None = None
    memberships: list[Membership] = []

    def close() -> None:
        if current is not None:
            index, name, querier = current
            devices[name] = IgmpDevice(index, name, querier, tuple(memberships))

    for line in text.splitlines():
        if not line.strip() or line.startswith("Idx"):
            continue
        device = _DEVICE.match(line)
        if device:
            close()
            current = (int(device["index"]), device["name"], device["querier"])
            memberships = []
            continue
        group = _GROUP.match(line)
        if group and current is not None:
            memberships.append(
                Membership(
                    group=kernel_address(group["group"], byteorder),
                    users=int(group["users"]),
                    timer_running=group["running"] == "1",
                    reporter=group["reporter"] != "0",
                )
            )
            continue
        unreadable.append(line.strip())
    close()
    return IgmpTable(devices, tuple(unreadable))
