"""Check 5 (``--listen SECONDS``): what crosses the interface, from a packet socket (root).

A packet socket sees a datagram before rp_filter, the firewall and the sockets do, and sees what
the host sends. So it tells "the Transit Gateway delivers nothing" from "the host drops what
arrives", and shows two hazards a setting cannot: a sender's TTL, and IGMPv3 reports leaving.

Inferred, not documented by AWS: that a datagram leaving with TTL 1 does not cross the Transit
Gateway, which forwards like a router (mcastkit's streams default to TTL 8, and the relay takes
``--ttl`` for that reason).
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mcastkit.doctor.findings import Finding, Severity
from mcastkit.doctor.igmp_version import force_v2_fix
from mcastkit.errors import EnvironmentFailure
from mcastkit.net.addresses import GroupPort
from mcastkit.net.frames import (
    ETH_P_ALL,
    ETH_P_IP,
    IGMPV3_REPORT,
    igmp_type,
    igmp_type_name,
    ipv4_packet,
    udp_destination_port,
)

CHECK = "capture"
#: Flows listed one by one; the rest are counted.
_SHOWN_FLOWS = 20
_QUERY = 0x11


@dataclass
class FlowTally:
    """Datagrams of one group and port in one direction."""

    datagrams: int = 0
    ttl_min: int = 255
    ttl_max: int = 0

    def add(self, ttl: int) -> None:
        self.datagrams += 1
        self.ttl_min = min(self.ttl_min, ttl)
        self.ttl_max = max(self.ttl_max, ttl)

    @property
    def ttls(self) -> str:
        return str(self.ttl_min) if self.ttl_min == self.ttl_max else f"{self.ttl_min}-{self.ttl_max}"


@dataclass
class Traffic:
    """What a capture saw: UDP multicast per (group, port, leaving), IGMP per (type, leaving)."""

    flows: dict[tuple[str, int, bool], FlowTally] = field(default_factory=dict)
    igmp: Counter[tuple[str, bool]] = field(default_factory=Counter)
    query_sources: set[str] = field(default_factory=set)

    def observe(self, data: bytes, outgoing: bool) -> None:
        """Count one IPv4 packet (no link-layer header), sent by this host when ``outgoing``."""
        packet = ipv4_packet(data)
        if packet is None:
            return
        kind = igmp_type(packet)
        if kind is not None:
            self.igmp[(igmp_type_name(kind), outgoing)] += 1
            if kind == _QUERY and not outgoing:
                self.query_sources.add(packet.source_address)
            return
        port = udp_destination_port(packet)
        destination = packet.destination
        # Data groups only: 224.0.0.0/24 is link-local control (mDNS, routing protocols).
        if port is None or destination[0] >> 4 != 0xE or destination[:3] == b"\xe0\x00\x00":
            return
        key = (packet.destination_address, port, outgoing)
        self.flows.setdefault(key, FlowTally()).add(packet.ttl)


def packet_socket(interface: str, seconds: float) -> socket.socket:
    """A packet socket on ``interface`` that sees IPv4 both ways (root: CAP_NET_RAW)."""
    try:
        # ETH_P_ALL, not ETH_P_IP: the kernel hands outgoing packets to ETH_P_ALL taps only.
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
    except PermissionError:
        raise EnvironmentFailure(
            f"--listen {seconds:g}: capturing on {interface} needs root (CAP_NET_RAW); run as root, or "
            "leave out --listen"
        ) from None
    try:
        sock.bind((interface, 0))
    except OSError as err:
        sock.close()
        raise EnvironmentFailure(f"--listen: cannot capture on {interface}: {err.strerror}") from None
    return sock


def capture_traffic(
    interface: str,
    seconds: float,
    traffic: Traffic,
    open_socket: Callable[[str, float], socket.socket] = packet_socket,
) -> None:
    """Count the IPv4 packets crossing ``interface`` either way for ``seconds``."""
    with open_socket(interface, seconds) as sock:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(min(left, 0.5))
            try:
                data, address = sock.recvfrom(65535)
            except TimeoutError:
                continue
            # address: (interface, ethernet protocol, packet type, hardware type, hardware address)
            if address[1] == ETH_P_IP:
                traffic.observe(data, address[2] == socket.PACKET_OUTGOING)


def traffic_findings(
    traffic: Traffic, interface: str, groups: Sequence[GroupPort], seconds: float
) -> list[Finding]:
    return [
        *_igmp_findings(traffic, interface, seconds),
        *_flow_findings(traffic, interface, groups, seconds),
    ]


def _igmp_findings(traffic: Traffic, interface: str, seconds: float) -> list[Finding]:
    subject = f"IGMP on {interface}"
    findings: list[Finding] = []
    v3_out = traffic.igmp[(igmp_type_name(IGMPV3_REPORT), True)]
    if v3_out:
        findings.append(
            Finding(
                Severity.PROBLEM,
                CHECK,
                subject,
                f"{v3_out} IGMPv3 report(s) left {interface} in {seconds:g} s: the Transit Gateway ignores "
                "them, so it never learns of these joins",
                force_v2_fix(interface),
            )
        )
    if not traffic.igmp:
        findings.append(
            Finding(
                Severity.OK,
                CHECK,
                subject,
                f"no IGMP message in {seconds:g} s (the Transit Gateway queries every 2 minutes; a join "
                "sends its reports at once: listen longer, or start a receiver while listening)",
            )
        )
    else:
        counts = {
            direction: ", ".join(
                f"{count} {kind}"
                for (kind, outgoing), count in sorted(traffic.igmp.items())
                if outgoing is out
            )
            for direction, out in (("in", False), ("out", True))
        }
        queriers = (
            f" (queries from {', '.join(sorted(traffic.query_sources))})" if traffic.query_sources else ""
        )
        seen = "; ".join(f"{direction}: {text}" for direction, text in counts.items() if text)
        findings.append(Finding(Severity.OK, CHECK, subject, f"in {seconds:g} s, {seen}{queriers}"))
    return findings


def _flow_findings(
    traffic: Traffic, interface: str, groups: Sequence[GroupPort], seconds: float
) -> list[Finding]:
    findings: list[Finding] = []
    flows = sorted(traffic.flows.items(), key=lambda item: -item[1].datagrams)
    wanted = {(g.group, g.port) for g in groups}
    for (address, port, outgoing), tally in flows:
        if wanted and (address, port) not in wanted:
            continue
        subject = f"{address}:{port} {'leaving' if outgoing else 'arriving on'} {interface}"
        if outgoing and tally.ttl_min <= 1:
            findings.append(
                Finding(
                    Severity.PROBLEM,
                    CHECK,
                    subject,
                    f"{tally.datagrams} datagram(s) in {seconds:g} s with TTL {tally.ttls}: the sender uses "
                    "TTL 1 (the socket default), which does not cross the Transit Gateway or a relay hop",
                    "set IP_MULTICAST_TTL on the sending socket, e.g. probe send/relay egress --ttl 8",
                )
            )
            continue
        where = " (on the wire: if the receiver gets none, look at rp_filter, the firewall and its port)"
        findings.append(
            Finding(
                Severity.OK,
                CHECK,
                subject,
                f"{tally.datagrams} datagram(s) in {seconds:g} s, TTL {tally.ttls}"
                + ("" if outgoing else where),
            )
        )
    if not wanted and len(findings) > _SHOWN_FLOWS:
        hidden = len(findings) - _SHOWN_FLOWS
        findings = findings[:_SHOWN_FLOWS]
        findings.append(
            Finding(Severity.OK, CHECK, f"multicast on {interface}", f"and {hidden} more flow(s)")
        )
    for group in groups:
        findings.extend(_silent(traffic, interface, group, seconds))
    if not wanted and not traffic.flows:
        findings.append(
            Finding(
                Severity.WARN,
                CHECK,
                f"multicast on {interface}",
                f"no multicast datagram crossed {interface} in {seconds:g} s",
                "pass --group to say what should arrive; check the AWS side with --aws",
            )
        )
    return findings


def _silent(traffic: Traffic, interface: str, group: GroupPort, seconds: float) -> list[Finding]:
    """A problem when nothing of ``group`` arrived and this host did not send it either."""
    if any((group.group, group.port, outgoing) in traffic.flows for outgoing in (False, True)):
        return []
    other_ports = sorted(
        {port for address, port, outgoing in traffic.flows if address == group.group and not outgoing}
    )
    elsewhere = (
        f"; datagrams to {group.group} did arrive on port(s) {', '.join(map(str, other_ports))}: "
        "check the port"
        if other_ports
        else ""
    )
    return [
        Finding(
            Severity.PROBLEM,
            CHECK,
            f"{group} arriving on {interface}",
            f"nothing arrived in {seconds:g} s{elsewhere}",
            "check the AWS side (mcastkit doctor --aws): the ENI's membership of the group, its security "
            "group and network ACL; and that the sender sends (with a TTL above 1)",
        )
    ]
