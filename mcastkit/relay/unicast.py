"""Unicast delivery from the egress (``--unicast``): a group's datagrams to listed receivers.

For receivers that cannot join a group (Fargate tasks, applications that take only unicast,
hosts with no multicast domain). Each (group, receiver) pair has a UDP socket connected to the
receiver: the kernel then reports the receiver's host refusing a datagram (ICMP port unreachable)
as ``ECONNREFUSED`` on a later send, which an unconnected socket never hears of, and a refusal
on one receiver's socket cannot touch another's. A run of equal-size datagrams goes to each
receiver as one UDP GSO message, as it goes to a group.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from mcastkit.net.mmsg import BatchSender, Destination
from mcastkit.net.sockets import SocketSetupError, set_buffer
from mcastkit.relay.metrics import GroupStats, UnicastStats

#: Drop reason of a copy the kernel refused because the receiver's host answered port unreachable.
REFUSED = "unicast_refused"


class Target:
    """One receiver of one group: its connected socket and batch (a datagram the kernel refuses
    goes to ``on_error`` with this target as its tag), the group's counters (a copy sent counts in
    the group's ``datagrams_out``) and its own."""

    __slots__ = ("batch", "counts", "destination", "label", "sock", "stats")

    def __init__(
        self,
        sock: socket.socket,
        address: str,
        port: int,
        *,
        stats: GroupStats,
        counts: UnicastStats,
        on_error: Callable[[int, Any, int], None],
    ) -> None:
        self.sock = sock
        self.destination = Destination(address, port)
        self.label = f"{address}:{port}"
        self.stats = stats
        self.counts = counts
        self.batch = BatchSender(sock, on_error)


def open_unicast_sender(address: str, port: int, *, buffer_bytes: int) -> socket.socket:
    """A UDP socket connected to ``address:port``, sending from the address its route picks.

    The egress never reads it: its receive buffer is the smallest the kernel allows, so
    whatever the receiver sends back costs little.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        set_buffer(sock, socket.SO_SNDBUF, buffer_bytes)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)  # raised to the kernel's minimum
        sock.connect((address, port))
    except OSError as err:
        sock.close()
        raise SocketSetupError(
            err.errno, f"--unicast {address}:{port}: cannot send there ({err.strerror}): check the route"
        ) from None
    return sock
