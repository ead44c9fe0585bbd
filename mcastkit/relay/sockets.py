"""Address parsing and multicast socket setup, one small function per concern.

Every failure raises :class:`AddressError` (bad user input) or :class:`SocketSetupError`
(the host refused) with a message naming the value, never a bare ``OSError``.
"""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import socket
import struct

#: SIOCGIFADDR from <linux/sockios.h>: the IPv4 address of an interface by name.
_SIOCGIFADDR = 0x8915
#: Linux IP_MULTICAST_ALL (not exported by the socket module): 0 = only groups this socket joined.
_IP_MULTICAST_ALL = 49
DEFAULT_BUFFER_BYTES = 8 * 1024 * 1024


class AddressError(ValueError):
    """A command-line address is malformed."""


class SocketSetupError(OSError):
    """The host refused a socket operation; the message says what to check."""


def parse_endpoint(value: str, *, flag: str, any_port: bool = False) -> tuple[str, int]:
    """``HOST:PORT`` as (host, port); host may be a name, an IPv4 address or empty (all).

    With ``any_port`` (addresses to listen on), port 0 means one the kernel picks.
    """
    host, sep, port_text = value.rpartition(":")
    if not sep:
        raise AddressError(f"{flag} {value!r}: expected HOST:PORT")
    if any_port and port_text == "0":
        return host or "0.0.0.0", 0
    return host or "0.0.0.0", _port(port_text, flag=flag, value=value)


def parse_group(value: str, *, flag: str) -> tuple[str, int]:
    """``GROUP:PORT`` with an IPv4 multicast group (224.0.0.0/4)."""
    address, sep, port_text = value.rpartition(":")
    if not sep:
        raise AddressError(f"{flag} {value!r}: expected GROUP:PORT, e.g. 239.1.1.1:5000")
    try:
        group = ipaddress.IPv4Address(address)
    except ValueError:
        raise AddressError(f"{flag} {value!r}: {address!r} is not an IPv4 address") from None
    if not group.is_multicast:
        raise AddressError(f"{flag} {value!r}: {address} is not a multicast group (224.0.0.0/4)")
    return str(group), _port(port_text, flag=flag, value=value)


def _port(text: str, *, flag: str, value: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise AddressError(f"{flag} {value!r}: port {text!r} is not a number from 1 to 65535")
    return int(text)


def resolve_interface(value: str) -> str:
    """An IPv4 address as given, or the address of a named interface (ECS awsvpc: ``eth0``)."""
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        pass
    if not value or len(value) >= 16 or "/" in value:
        raise AddressError(f"--interface {value!r}: not an IPv4 address or an interface name")
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        request = struct.pack("256s", value.encode())
        result = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, request)
    except OSError as err:
        if err.errno == errno.ENODEV:
            raise AddressError(f"--interface {value!r}: no interface of that name on this host") from None
        if err.errno == errno.EADDRNOTAVAIL:
            raise AddressError(f"--interface {value!r}: the interface has no IPv4 address") from None
        raise AddressError(f"--interface {value!r}: cannot read its address: {err.strerror}") from None
    finally:
        probe.close()
    return socket.inet_ntoa(result[20:24])


def _host_error(err: OSError, what: str, interface: str) -> SocketSetupError:
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
        raise _host_error(err, f"join {group}", interface) from None


def receive_only_joined_groups(sock: socket.socket) -> None:
    """Without this, Linux delivers every group joined by any socket on the same port."""
    sock.setsockopt(socket.IPPROTO_IP, _IP_MULTICAST_ALL, 0)


def set_multicast_interface(sock: socket.socket, interface: str) -> None:
    try:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface))
    except OSError as err:
        raise _host_error(err, "set the multicast interface", interface) from None


def set_multicast_ttl(sock: socket.socket, ttl: int) -> None:
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)


def set_multicast_loop(sock: socket.socket, enabled: bool) -> None:
    """Whether this host's own listeners also get what the socket sends."""
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, int(enabled))


def set_buffer(sock: socket.socket, option: int, size: int) -> int:
    """Ask for a large kernel buffer; as root, beyond net.core.[rw]mem_max. Returns what was granted."""
    force = {socket.SO_RCVBUF: 33, socket.SO_SNDBUF: 32}[option]  # SO_RCVBUFFORCE, SO_SNDBUFFORCE
    try:
        sock.setsockopt(socket.SOL_SOCKET, force, size)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, option, size)
    return sock.getsockopt(socket.SOL_SOCKET, option)


def open_receiver(group: str, port: int, interface: str, *, buffer_bytes: int) -> socket.socket:
    """A non-blocking socket that receives ``group:port`` on the interface."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((group, port))
        except OSError as err:
            raise SocketSetupError(err.errno, f"bind {group}:{port}: {err.strerror}") from None
        receive_only_joined_groups(sock)
        join_group(sock, group, interface)
        set_buffer(sock, socket.SO_RCVBUF, buffer_bytes)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def open_sender(interface: str, *, ttl: int, loop: bool, buffer_bytes: int) -> socket.socket:
    """A socket that sends multicast out of the interface with the given TTL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        set_multicast_interface(sock, interface)
        set_multicast_ttl(sock, ttl)
        set_multicast_loop(sock, loop)
        set_buffer(sock, socket.SO_SNDBUF, buffer_bytes)
        try:
            sock.bind((interface, 0))
        except OSError as err:
            raise _host_error(err, "bind the sender", interface) from None
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
