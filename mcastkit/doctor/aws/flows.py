"""The packets a multicast member's firewalls must let through, and how a rule is matched to them.

The flows are the member rules mcastkit itself creates (:mod:`mcastkit.config.rules`, AWS Transit
Gateway guide, "Multicast considerations"): IGMP in from the Transit Gateway's querier
0.0.0.0/32, UDP in from the senders to the group's port, IGMP out to 224.0.0.2/32 (leaves) and to
each group (joins). UDP out to the groups is a sender's need, not a receiver's, and is not checked.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mcastkit.config.rules import ALL_ROUTERS_CIDR, IGMP, QUERIER_CIDR, UDP
from mcastkit.net.addresses import GroupPort

IPv4Network = ipaddress.IPv4Network
ANYWHERE = IPv4Network("0.0.0.0/0")
_PROTOCOL_NAMES = {"tcp": 6, "udp": UDP, "icmp": 1, "icmpv6": 58, "igmp": IGMP}
#: A rule for every protocol.
ALL_PROTOCOLS = "-1"


@dataclass(frozen=True)
class Flow:
    """One kind of packet through the member's firewalls. ``peer`` is the far end (the source of an
    inbound flow, the destination of an outbound one); ``None``: a sender nobody named."""

    egress: bool
    protocol: int
    peer: IPv4Network | None
    #: What the packets are, for the report: "IGMPv2 queries from the Transit Gateway".
    purpose: str
    port: int | None = None

    @property
    def direction(self) -> str:
        return "outbound" if self.egress else "inbound"

    def __str__(self) -> str:
        protocol = "IGMP" if self.protocol == IGMP else f"UDP port {self.port}"
        far = "a sender" if self.peer is None else str(self.peer)
        return f"{self.direction} {protocol} {'to' if self.egress else 'from'} {far}"


def member_flows(groups: Sequence[GroupPort], sources: Sequence[IPv4Network]) -> list[Flow]:
    """What a receiver of ``groups`` needs, with UDP from each of ``sources`` (or from some sender)."""
    flows = [
        Flow(False, IGMP, IPv4Network(QUERIER_CIDR), "IGMPv2 queries from the Transit Gateway"),
        Flow(True, IGMP, IPv4Network(ALL_ROUTERS_CIDR), "IGMPv2 leaves to all routers"),
    ]
    for group in groups:
        flows.append(Flow(True, IGMP, IPv4Network(f"{group.group}/32"), f"IGMPv2 joins of {group.group}"))
        senders: list[IPv4Network | None] = [*sources] or [None]
        for sender in senders:
            flows.append(Flow(False, UDP, sender, f"the datagrams of {group}", port=group.port))
    return flows


def protocol_matches(rule_protocol: Any, protocol: int) -> bool:
    """Whether a rule's protocol (``"-1"``, ``"udp"``, ``"17"``, ``"2"``) covers ``protocol``."""
    text = str(rule_protocol).strip().lower()
    if text == ALL_PROTOCOLS:
        return True
    number = _PROTOCOL_NAMES.get(text)
    if number is None:
        try:
            number = int(text)
        except ValueError:
            return False
    return number == protocol


def port_matches(first: Any, last: Any, port: int | None) -> bool:
    """Whether a rule's port range covers ``port`` (no range, or -1: every port)."""
    if port is None or first is None or last is None or int(first) == -1:
        return True
    return int(first) <= port <= int(last)


def subtract(parts: Iterable[IPv4Network], cut: IPv4Network) -> tuple[list[IPv4Network], list[IPv4Network]]:
    """``parts`` less ``cut``: (what remains, what ``cut`` took). CIDRs nest or are disjoint."""
    remaining: list[IPv4Network] = []
    taken: list[IPv4Network] = []
    for part in parts:
        if not part.overlaps(cut):
            remaining.append(part)
        elif part.subnet_of(cut):
            taken.append(part)
        else:
            remaining.extend(part.address_exclude(cut))
            taken.append(cut)
    return sorted(remaining), taken


def shown(networks: Iterable[IPv4Network]) -> str:
    return ", ".join(str(n) for n in ipaddress.collapse_addresses(networks))
