"""IPv4 packets as a packet socket hands them over: the few fields the lab's sniffer and
``mcastkit doctor`` read (protocol, TTL, addresses, UDP destination port, IGMP type).

An ``AF_PACKET``/``SOCK_RAW`` socket gives Ethernet frames (:func:`ipv4_in_ethernet`); a
``SOCK_DGRAM`` one gives the IP packet itself (:func:`ipv4_packet`). Addresses stay as the 4
packed bytes of the header, so a caller matching one group compares bytes, not strings.
Anything too short or not IPv4 is ``None``, never an exception: a capture sees whatever the
wire carries.
"""

from __future__ import annotations

import socket
from typing import NamedTuple

#: The Ethernet protocol number of IPv4 (a packet socket's filter: incoming packets only).
ETH_P_IP = 0x0800
#: Every protocol: the only filter under which a packet socket also sees what the host sends.
ETH_P_ALL = 0x0003
ETHERNET_HEADER = 14
IPPROTO_IGMP = 2
IPPROTO_UDP = 17
#: IGMP message types (RFC 2236, RFC 3376).
IGMP_TYPES = {0x11: "query", 0x12: "v1-report", 0x16: "v2-report", 0x17: "v2-leave", 0x22: "v3-report"}
IGMPV3_REPORT = 0x22
_IPV4_MIN_HEADER = 20
_UDP_HEADER = 8


class Ipv4Packet(NamedTuple):
    """The header fields of one IPv4 packet found in ``data`` at offset ``at``."""

    protocol: int
    ttl: int
    #: Packed, network order (``socket.inet_aton`` form).
    source: bytes
    destination: bytes
    #: Where the transport header (UDP, IGMP) starts in ``data``.
    payload_at: int
    data: bytes

    @property
    def source_address(self) -> str:
        return socket.inet_ntoa(self.source)

    @property
    def destination_address(self) -> str:
        return socket.inet_ntoa(self.destination)


def ipv4_packet(data: bytes, at: int = 0) -> Ipv4Packet | None:
    """The IPv4 packet at offset ``at`` of ``data``, or None if there is none."""
    if len(data) < at + _IPV4_MIN_HEADER or data[at] >> 4 != 4:
        return None
    header = (data[at] & 0x0F) * 4
    if header < _IPV4_MIN_HEADER or len(data) < at + header:
        return None
    return Ipv4Packet(
        protocol=data[at + 9],
        ttl=data[at + 8],
        source=data[at + 12 : at + 16],
        destination=data[at + 16 : at + 20],
        payload_at=at + header,
        data=data,
    )


def ipv4_in_ethernet(frame: bytes) -> Ipv4Packet | None:
    """The IPv4 packet an Ethernet frame carries (no VLAN tag), or None."""
    if frame[12:14] != ETH_P_IP.to_bytes(2, "big"):
        return None
    return ipv4_packet(frame, ETHERNET_HEADER)


def udp_destination_port(packet: Ipv4Packet) -> int | None:
    """The UDP destination port of ``packet``, or None if it is not a whole UDP header."""
    at = packet.payload_at
    if packet.protocol != IPPROTO_UDP or len(packet.data) < at + _UDP_HEADER:
        return None
    return int.from_bytes(packet.data[at + 2 : at + 4], "big")


def igmp_type(packet: Ipv4Packet) -> int | None:
    """The IGMP message type ``packet`` carries (e.g. 0x16, a v2 report), or None."""
    if packet.protocol != IPPROTO_IGMP or len(packet.data) <= packet.payload_at:
        return None
    return packet.data[packet.payload_at]


def igmp_type_name(kind: int) -> str:
    """``v2-report`` for 0x16, ``0x13`` for a type without a name here."""
    return IGMP_TYPES.get(kind, f"0x{kind:02x}")
