"""Parsing addresses once into typed values: ``GROUP:PORT``, ``HOST:PORT`` and ``--interface``.

The command line and the config file both parse through these functions, so a multicast
group or an endpoint is checked by one rule wherever it is written. Every failure raises
:class:`AddressError` with a message naming the flag (or field) and the value.
"""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import socket
import struct
from typing import NamedTuple

from mcastkit.errors import BadInput

#: SIOCGIFADDR from <linux/sockios.h>: the IPv4 address of an interface by name.
_SIOCGIFADDR = 0x8915
#: 224.0.0.0/24 is link-local control traffic (IGMP, OSPF...): never a data group.
_LINK_LOCAL = ipaddress.IPv4Network("224.0.0.0/24")


class AddressError(BadInput, ValueError):
    """An address is malformed or not usable on this host."""


class GroupPort(NamedTuple):
    group: str
    port: int

    def __str__(self) -> str:
        return f"{self.group}:{self.port}"


class Endpoint(NamedTuple):
    """A TCP endpoint: ``host`` is a name or an IPv4 address (``0.0.0.0`` for all)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def data_group(address: str, *, where: str = "") -> ipaddress.IPv4Address:
    """An IPv4 multicast group that may carry data: in 224.0.0.0/4, not the link-local 224.0.0.0/24."""
    prefix = f"{where}: " if where else ""
    try:
        group = ipaddress.IPv4Address(address)
    except ValueError:
        raise AddressError(f"{prefix}{address!r} is not an IPv4 address") from None
    if not group.is_multicast:
        raise AddressError(f"{prefix}{address} is not a multicast group (224.0.0.0/4)")
    if group in _LINK_LOCAL:
        raise AddressError(
            f"{prefix}{address} is in 224.0.0.0/24, reserved for link-local control (IGMP, routing)"
        )
    return group


def parse_group(value: str, *, flag: str) -> GroupPort:
    """``GROUP:PORT`` with an IPv4 multicast data group (see :func:`data_group`)."""
    address, sep, port_text = value.rpartition(":")
    where = f"{flag} {value!r}".strip()
    if not sep:
        raise AddressError(f"{where}: expected GROUP:PORT, e.g. 239.1.1.1:5000")
    group = data_group(address, where=where)
    return GroupPort(str(group), _port(port_text, where=where))


def parse_endpoint(value: str, *, flag: str, any_port: bool = False) -> Endpoint:
    """``HOST:PORT``; host may be a name, an IPv4 address or empty (all).

    With ``any_port`` (addresses to listen on), port 0 means one the kernel picks.
    """
    host, sep, port_text = value.rpartition(":")
    where = f"{flag} {value!r}".strip()
    if not sep:
        raise AddressError(f"{where}: expected HOST:PORT")
    if any_port and port_text == "0":
        return Endpoint(host or "0.0.0.0", 0)
    return Endpoint(host or "0.0.0.0", _port(port_text, where=where))


def _port(text: str, *, where: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise AddressError(f"{where}: port {text!r} is not a number from 1 to 65535")
    return int(text)


def resolve_interface(value: str) -> str:
    """The IPv4 address of a local interface, given as its address or its name (ECS awsvpc: ``eth0``).

    An address must be configured on this host (in this network namespace): binding to it is
    the check, so the answer is the kernel's, not a guess from parsing.
    """
    try:
        address = str(ipaddress.IPv4Address(value))
    except ValueError:
        address = _address_of(value)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError as err:
            if err.errno == errno.EADDRNOTAVAIL:
                raise AddressError(
                    f"--interface {value}: no interface on this host has that address"
                ) from None
            raise AddressError(f"--interface {value}: {err.strerror}") from None
    return address


def _address_of(name: str) -> str:
    if not name or len(name) >= 16 or "/" in name:
        raise AddressError(f"--interface {name!r}: not an IPv4 address or an interface name")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            result = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, struct.pack("256s", name.encode()))
        except OSError as err:
            if err.errno == errno.ENODEV:
                raise AddressError(f"--interface {name!r}: no interface of that name on this host") from None
            if err.errno == errno.EADDRNOTAVAIL:
                raise AddressError(f"--interface {name!r}: the interface has no IPv4 address") from None
            raise AddressError(f"--interface {name!r}: cannot read its address: {err.strerror}") from None
    return socket.inet_ntoa(result[20:24])
