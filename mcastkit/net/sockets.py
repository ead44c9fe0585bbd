"""Multicast and relay-link socket setup, one small function per concern.

Every failure the host can cause raises :class:`SocketSetupError` whose message says what to
check, never a bare ``OSError``.
"""

from __future__ import annotations

import errno
import socket
import struct

from mcastkit.errors import EnvironmentFailure

#: Linux IP_MULTICAST_ALL (not exported by the socket module): 0 = only groups this socket joined.
_IP_MULTICAST_ALL = 49
#: SO_RCVBUFFORCE, SO_SNDBUFFORCE (linux/socket.h): as root, beyond net.core.[rw]mem_max.
_FORCE = {socket.SO_RCVBUF: 33, socket.SO_SNDBUF: 32}
DEFAULT_BUFFER_BYTES = 8 * 1024 * 1024
#: A receive buffer for a process that must not lose a busy feed (the stream sequencer, receivers,
#: the bus logger): at 200k msg/s of 64-512 B, about half a second, so that a moment scheduled away
#: or waiting on a write loses nothing. Without root (an ECS task) the kernel caps it at the host's
#: net.core.rmem_max, which the hosts' bootstrap raises to 64 MiB.
FEED_BUFFER_BYTES = 32 * 1024 * 1024


class SocketSetupError(EnvironmentFailure, OSError):
    """The host refused a socket operation; the message (``strerror``) says what to check.

    An :class:`EnvironmentFailure` (exit 3) that is still an ``OSError`` with its ``errno``,
    for code that handles socket errors as such.
    """

    def render(self) -> str:
        return str(self.strerror)  # str() would prefix "[Errno N]"


def host_error(err: OSError, what: str, interface: str) -> SocketSetupError:
    """``err`` as a message an operator can act on."""
    if err.errno in (errno.EADDRNOTAVAIL, errno.ENODEV):
        return SocketSetupError(err.errno, f"{what}: interface address {interface} is not on this host")
    if err.errno in (errno.EPERM, errno.EACCES):
        return SocketSetupError(err.errno, f"{what}: permission denied")
    if err.errno == errno.ENOBUFS:
        return SocketSetupError(err.errno, f"{what}: too many groups (net.ipv4.igmp_max_memberships)")
    return SocketSetupError(err.errno, f"{what} on {interface}: {err.strerror}")


def join_group(sock: socket.socket, group: str, interface: str) -> None:
    """IP_ADD_MEMBERSHIP on the interface with address ``interface`` (sends the IGMP join)."""
    request = socket.inet_aton(group) + socket.inet_aton(interface)
    try:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, request)
    except OSError as err:
        raise host_error(err, f"join {group}", interface) from None


def receive_only_joined_groups(sock: socket.socket) -> None:
    """Without this, Linux delivers every group joined by any socket on the same port."""
    sock.setsockopt(socket.IPPROTO_IP, _IP_MULTICAST_ALL, 0)


def set_multicast_interface(sock: socket.socket, interface: str) -> None:
    try:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface))
    except OSError as err:
        raise host_error(err, "set the multicast interface", interface) from None


def set_multicast_ttl(sock: socket.socket, ttl: int) -> None:
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)


def set_multicast_loop(sock: socket.socket, enabled: bool) -> None:
    """Whether this host's own listeners also get what the socket sends."""
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, int(enabled))


def set_buffer(sock: socket.socket, option: int, size: int) -> int:
    """Ask for a large kernel buffer; as root, beyond net.core.[rw]mem_max. Returns what was granted."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, _FORCE[option], size)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, option, size)
    return sock.getsockopt(socket.SOL_SOCKET, option)


def set_receive_timeout(sock: socket.socket, seconds: float) -> None:
    """A kernel-side receive timeout (``SO_RCVTIMEO``) on a blocking socket.

    ``socket.settimeout`` would make the descriptor non-blocking and poll in Python, which a
    blocking ``recvmmsg`` cannot use.
    """
    sock.setblocking(True)
    whole = int(seconds)
    micros = int((seconds - whole) * 1_000_000)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", whole, micros))


def open_receiver(
    group: str, port: int, interface: str, *, buffer_bytes: int, timeout: float | None = None
) -> socket.socket:
    """A socket that receives ``group:port`` on the interface (joining sends the IGMP report).

    Non-blocking, or with ``timeout`` blocking with a kernel-side receive timeout.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            # Binding the group (not 0.0.0.0) keeps other groups on the same port out of this socket.
            sock.bind((group, port))
        except OSError as err:
            raise SocketSetupError(err.errno, f"bind {group}:{port}: {err.strerror}") from None
        receive_only_joined_groups(sock)
        join_group(sock, group, interface)
        set_buffer(sock, socket.SO_RCVBUF, buffer_bytes)
        if timeout is None:
            sock.setblocking(False)
        else:
            set_receive_timeout(sock, timeout)
    except BaseException:
        sock.close()
        raise
    return sock


def open_sender(
    interface: str,
    *,
    ttl: int,
    loop: bool,
    buffer_bytes: int = DEFAULT_BUFFER_BYTES,
    connect: tuple[str, int] | None = None,
) -> socket.socket:
    """A socket that sends multicast out of the interface with the given TTL.

    With ``connect`` it is connected to that group (``send`` instead of ``sendto``).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        set_multicast_interface(sock, interface)
        set_multicast_ttl(sock, ttl)
        set_multicast_loop(sock, loop)
        set_buffer(sock, socket.SO_SNDBUF, buffer_bytes)
        try:
            sock.bind((interface, 0))
        except OSError as err:
            raise host_error(err, "bind the sender", interface) from None
        if connect is not None:
            sock.connect(connect)
    except BaseException:
        sock.close()
        raise
    return sock


def set_tcp_options(sock: socket.socket | None) -> None:
    """Low latency (no Nagle) and kernel keepalives on a relay link."""
    if sock is None:
        return
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
