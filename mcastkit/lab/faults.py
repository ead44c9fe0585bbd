"""Faults a lab can be built with (``lab up --fault``): the host mistakes behind "multicast does
not arrive", each one that ``mcastkit doctor`` names.

- ``igmpv3``: the first receiver's host was never forced to IGMPv2 (its bootstrap did not run).
  The lab's bridge still forwards to it (Linux snooping hears IGMPv3 too); a Transit Gateway,
  which hears only IGMPv2, would not.
- ``rp-filter``: the first receiver has strict reverse-path filtering and a second interface
  the route back to the egress relay leaves by (as on a host whose multicast ENI is not its
  primary one): the kernel drops the relay's datagrams before any socket sees them.
- ``ttl1``: the egress relay emits with TTL 1, which no router passes on (the lab's one
  segment still delivers it).

The receiver that never joins (the lab's last) is the fourth: a host with no member socket.
"""

from __future__ import annotations

from enum import StrEnum

from mcastkit.lab import netns
from mcastkit.lab.topology import EGRESS_ADDRESS, Layout


class Fault(StrEnum):
    IGMPV3 = "igmpv3"
    RP_FILTER = "rp-filter"
    TTL1 = "ttl1"


#: The second interface ``rp-filter`` gives the first receiver, and its address.
SIDE_DEVICE = "side0"
SIDE_ADDRESS = "10.77.9.21/24"


def apply(layout: Layout, faults: set[Fault]) -> None:
    """Break the built lab's hosts as ``faults`` say (``ttl1`` is the relay's: see ``Lab.up``)."""
    first = layout.receivers[0].namespace
    if Fault.IGMPV3 in faults:
        for scope in ("all", "default", "eth0"):
            netns.in_namespace(first, ["sysctl", "-qw", f"net.ipv4.conf.{scope}.force_igmp_version=0"])
    if Fault.RP_FILTER in faults:
        # A veth whose peer stays in the namespace: an interface that leads nowhere (this kernel
        # may have no dummy driver).
        netns.ip(
            "link", "add", SIDE_DEVICE, "type", "veth", "peer", "name", f"{SIDE_DEVICE}p", namespace=first
        )
        netns.ip("address", "add", SIDE_ADDRESS, "dev", SIDE_DEVICE, namespace=first)
        for device in (SIDE_DEVICE, f"{SIDE_DEVICE}p"):
            netns.ip("link", "set", device, "up", namespace=first)
        netns.ip("route", "add", f"{EGRESS_ADDRESS}/32", "dev", SIDE_DEVICE, namespace=first)
        for scope in ("all", "eth0"):
            netns.in_namespace(first, ["sysctl", "-qw", f"net.ipv4.conf.{scope}.rp_filter=1"])
