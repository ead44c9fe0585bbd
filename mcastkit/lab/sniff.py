"""Count, at layer 2, the frames of one group that reach an interface, joined or not.

A host that has not joined a group drops its datagrams in the IP layer, so a UDP socket
cannot tell whether the switch (here the bridge) sent them at all. A packet socket can:
this is how the lab proves that IGMP snooping keeps a group away from non-members.
Run as ``python -m mcastkit.lab.sniff IFNAME GROUP PORT SECONDS``; prints JSON.
"""

from __future__ import annotations

import json
import signal
import socket
import struct
import sys
import time

_ETH_P_IP = 0x0800
_IPPROTO_UDP = 17


def is_group_datagram(frame: bytes, group: bytes, port: int) -> bool:
    """``frame`` is an Ethernet frame carrying IPv4/UDP to ``group`` (4 packed bytes) and ``port``."""
    if len(frame) < 14 + 20 + 8 or frame[12:14] != b"\x08\x00":
        return False
    header_length = (frame[14] & 0x0F) * 4
    if frame[14 + 9] != _IPPROTO_UDP or frame[14 + 16 : 14 + 20] != group:
        return False
    (destination_port,) = struct.unpack_from("!H", frame, 14 + header_length + 2)
    return bool(destination_port == port)


def count_frames(interface: str, group: str, port: int, seconds: float) -> int:
    """Frames for ``group:port`` arriving on ``interface`` during ``seconds`` (or until SIGTERM)."""
    packed_group = socket.inet_aton(group)
    stopping = [False]

    def stop(_signum: int, _frame: object) -> None:
        stopping[0] = True

    signal.signal(signal.SIGTERM, stop)
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_IP)) as sock:
        sock.bind((interface, 0))
        sock.settimeout(0.1)
        seen = 0
        deadline = time.monotonic() + seconds
        while not stopping[0] and time.monotonic() < deadline:
            try:
                frame, address = sock.recvfrom(65535)
            except TimeoutError:
                continue
            if address[2] == socket.PACKET_OUTGOING:
                continue
            if is_group_datagram(frame, packed_group, port):
                seen += 1
    return seen


def main(argv: list[str]) -> int:
    interface, group, port, seconds = argv
    seen = count_frames(interface, group, int(port), float(seconds))
    print(json.dumps({"interface": interface, "group": f"{group}:{port}", "frames": seen}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
