"""Parsing and checking the addresses a probe is given: ``GROUP:PORT`` and the local interface.

The syntax checks are the relay's (one parser for the whole command); the probe adds what a
test stream needs on top: no link-local control group, and an interface this host really has.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from typing import NamedTuple

from mcastkit.relay.sockets import AddressError, parse_group
from mcastkit.relay.sockets import resolve_interface as _address_of

#: 224.0.0.0/24 is link-local control traffic (IGMP, OSPF...): never a data group.
_RESERVED = ipaddress.IPv4Network("224.0.0.0/24")


class ProbeInputError(ValueError):
    """The user gave an address, port or interface that cannot work; the message names it."""


class GroupPort(NamedTuple):
    group: str
    port: int

    def __str__(self) -> str:
        return f"{self.group}:{self.port}"


def parse_group_port(text: str) -> GroupPort:
    """``"239.1.1.1:5001"`` → ``GroupPort``; the address must be a non-reserved IPv4 multicast group."""
    try:
        group, port = parse_group(text, flag="")
    except AddressError as err:
        raise ProbeInputError(str(err).strip()) from None
    if ipaddress.IPv4Address(group) in _RESERVED:
        raise ProbeInputError(f"{text!r}: {group} is in 224.0.0.0/24, reserved for link-local control")
    return GroupPort(group, port)


def resolve_interface(text: str) -> str:
    """Return the IPv4 address of a local interface, given its address or its name (``eth0``).

    An address must be configured on this host (in this network namespace): binding to it
    is the check, so the answer is the kernel's, not a guess from parsing.
    """
    try:
        address = _address_of(text)
    except AddressError as err:
        raise ProbeInputError(str(err)) from None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError as err:
            if err.errno == errno.EADDRNOTAVAIL:
                raise ProbeInputError(
                    f"--interface {text}: no interface on this host has that address"
                ) from None
            raise ProbeInputError(f"--interface {text}: {err.strerror}") from None
    return address
