"""Watch an interface at layer 2: the frames of one group that reach it, joined or not, and the
IGMP messages on it.

A host that has not joined a group drops its datagrams in the IP layer, so a UDP socket
cannot tell whether the switch (here the bridge) sent them at all. A packet socket can:
this is how the lab proves that IGMP snooping keeps a group away from non-members.
Run as ``python -m mcastkit.lab.sniff IFNAME GROUP PORT SECONDS``, or ``... igmp IFNAME SECONDS``
for the IGMP messages. Each prints ``listening`` on stderr once capturing, then on SIGTERM or after
SECONDS one JSON line on stdout: the frame count, or the IGMP messages seen (type and IP
destination), which is how a test tells an IGMPv2 report (0x16) from an IGMPv3 one (0x22).
"""

from __future__ import annotations

import json
import signal
import socket
import sys
import time
from collections.abc import Iterator

from mcastkit.net.frames import (
    ETH_P_IP,
    IPPROTO_UDP,
    igmp_type,
    igmp_type_name,
    ipv4_in_ethernet,
    udp_destination_port,
)


def is_group_datagram(frame: bytes, group: bytes, port: int) -> bool:
    """``frame`` is an Ethernet frame carrying IPv4/UDP to ``group`` (4 packed bytes) and ``port``."""
    packet = ipv4_in_ethernet(frame)
    if packet is None or packet.protocol != IPPROTO_UDP or packet.destination != group:
        return False
    return udp_destination_port(packet) == port


def igmp_message(frame: bytes) -> dict[str, str] | None:
    """The IGMP message an Ethernet frame carries: its type and IP destination, or None."""
    packet = ipv4_in_ethernet(frame)
    kind = None if packet is None else igmp_type(packet)
    if packet is None or kind is None:
        return None
    return {"type": igmp_type_name(kind), "destination": packet.destination_address}


def _incoming_frames(interface: str, seconds: float) -> Iterator[bytes]:
    """Frames arriving on ``interface`` (not sent by it) during ``seconds`` or until SIGTERM; prints
    ``listening`` on stderr once the capture has started."""
    stopping = [False]

    def stop(_signum: int, _frame: object) -> None:
        stopping[0] = True

    signal.signal(signal.SIGTERM, stop)
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP)) as sock:
        sock.bind((interface, 0))
        sock.settimeout(0.1)
        print("listening", file=sys.stderr, flush=True)
        deadline = time.monotonic() + seconds
        while not stopping[0] and time.monotonic() < deadline:
            try:
                frame, address = sock.recvfrom(65535)
            except TimeoutError:
                continue
            if address[2] != socket.PACKET_OUTGOING:
                yield frame


def count_frames(interface: str, group: str, port: int, seconds: float) -> int:
    """Frames for ``group:port`` arriving on ``interface`` during ``seconds`` (or until SIGTERM)."""
    packed_group = socket.inet_aton(group)
    frames = _incoming_frames(interface, seconds)
    return sum(1 for frame in frames if is_group_datagram(frame, packed_group, port))


def igmp_messages(interface: str, seconds: float) -> list[dict[str, str]]:
    """IGMP messages arriving on ``interface`` during ``seconds`` (or until SIGTERM), in order."""
    frames = _incoming_frames(interface, seconds)
    return [message for frame in frames if (message := igmp_message(frame))]


def main(argv: list[str]) -> int:
    if argv[:1] == ["igmp"]:
        interface, seconds = argv[1:]
        messages = igmp_messages(interface, float(seconds))
        print(json.dumps({"interface": interface, "igmp": messages}), flush=True)
        return 0
    interface, group, port, seconds = argv
    seen = count_frames(interface, group, int(port), float(seconds))
    print(json.dumps({"interface": interface, "group": f"{group}:{port}", "frames": seen}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
