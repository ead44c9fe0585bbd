"""One small function per multicast socket concern: sender, receiver, buffers."""

from __future__ import annotations

import errno
import socket
import struct

from mcastkit.probe.addresses import GroupPort, ProbeInputError

#: Big enough to ride out a scheduling hiccup at several hundred thousand datagrams per second.
RECEIVE_BUFFER = 16 * 1024 * 1024
#: linux/socket.h; the socket module does not export it.
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


def open_sender(group: GroupPort, *, interface: str, ttl: int, loop: bool = True) -> socket.socket:
    """A UDP socket connected to ``group`` that emits from ``interface`` with ``ttl``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, int(loop))
    sock.connect((group.group, group.port))
    return sock


def open_receiver(group: GroupPort, *, interface: str, timeout: float = 0.1) -> socket.socket:
    """A UDP socket bound to ``group`` and joined on ``interface`` (this sends the IGMP report)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    set_receive_buffer(sock, RECEIVE_BUFFER)
    try:
        # Binding the group (not 0.0.0.0) keeps other groups on the same port out of this socket.
        sock.bind((group.group, group.port))
    except OSError as err:
        sock.close()
        raise ProbeInputError(f"cannot bind {group}: {err.strerror}") from None
    add_membership(sock, group, interface)
    set_receive_timeout(sock, timeout)
    return sock


def set_receive_timeout(sock: socket.socket, seconds: float) -> None:
    """A kernel-side receive timeout (``SO_RCVTIMEO``) on a blocking socket.

    ``socket.settimeout`` would make the descriptor non-blocking and poll in Python, which
    the batched ``recvmmsg`` path cannot use.
    """
    sock.setblocking(True)
    whole = int(seconds)
    micros = int((seconds - whole) * 1_000_000)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", whole, micros))


def add_membership(sock: socket.socket, group: GroupPort, interface: str) -> None:
    request = socket.inet_aton(group.group) + socket.inet_aton(interface)
    try:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, request)
    except OSError as err:
        sock.close()
        if err.errno == errno.ENOBUFS:
            raise ProbeInputError(f"cannot join {group.group}: too many memberships on this host") from None
        raise ProbeInputError(f"cannot join {group.group} on {interface}: {err.strerror}") from None


def set_receive_buffer(sock: socket.socket, size: int) -> None:
    """Ask for ``size`` bytes; as root, past ``net.core.rmem_max``."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, size)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
