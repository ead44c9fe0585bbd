"""ICMP echo out of one device: is a peer's overlay address answering across the overlay?"""

from __future__ import annotations

import os
import select
import socket
import struct
import time

ECHO_REQUEST, ECHO_REPLY = 8, 0


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo(address: str, device: str, *, timeout: float = 1.0, tries: int = 2) -> bool:
    """Whether ``address`` answers an ICMP echo sent out of ``device`` (root: a raw socket)."""
    ident = os.getpid() & 0xFFFF
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device.encode())
        for sequence in range(1, tries + 1):
            body = struct.pack("!HHd", ident, sequence, time.time())
            header = struct.pack("!BBH", ECHO_REQUEST, 0, 0)
            packet = struct.pack("!BBH", ECHO_REQUEST, 0, _checksum(header + body)) + body
            sock.sendto(packet, (address, 0))
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                if not select.select([sock], [], [], left)[0]:
                    break
                reply, (source, _) = sock.recvfrom(2048)
                header_length = (reply[0] & 0x0F) * 4
                kind, _, _, got_ident, got_sequence = struct.unpack_from("!BBHHH", reply, header_length)
                if (
                    source == address
                    and kind == ECHO_REPLY
                    and (got_ident, got_sequence) == (ident, sequence)
                ):
                    return True
    return False
