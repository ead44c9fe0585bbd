"""Probe tests on loopback: the sockets, a fresh group each, and the skip when loopback multicast fails."""

from __future__ import annotations

import random
import socket

import pytest

from mcastkit.net.addresses import AddressError, GroupPort
from mcastkit.net.sockets import open_receiver, open_sender
from mcastkit.probe.report import Latency, ProbeReport

LOOPBACK = "127.0.0.1"


def loopback_receiver(group: GroupPort, timeout: float = 0.1) -> socket.socket:
    return open_receiver(*group, LOOPBACK, buffer_bytes=1 << 20, timeout=timeout)


def loopback_sender(group: GroupPort, ttl: int) -> socket.socket:
    return open_sender(LOOPBACK, ttl=ttl, loop=True, connect=group)


def _loopback_multicast_works() -> bool:
    group = GroupPort("239.255.77.1", random.randint(20000, 60000))
    try:
        with (
            loopback_receiver(group, timeout=0.5) as listen,
            loopback_sender(group, ttl=1) as send,
        ):
            send.send(b"x" * 32)
            return listen.recv(64) == b"x" * 32
    except (OSError, AddressError):
        return False


needs_loopback_multicast = pytest.mark.skipif(
    not _loopback_multicast_works(), reason="this host does not deliver multicast on loopback"
)


def random_group() -> GroupPort:
    return GroupPort(
        f"239.255.{random.randint(1, 254)}.{random.randint(1, 254)}", random.randint(20000, 60000)
    )


def sample_report(*, expected: int = 100, unique: int = 100, max_loss: float = 0.0) -> ProbeReport:
    """A report of a finished stream, for tests that read or judge one."""
    return ProbeReport(
        group="239.1.1.1:5001",
        interface="127.0.0.1",
        stream_id=7,
        expected=expected,
        received=unique,
        unique=unique,
        duplicates=0,
        reordered=0,
        unexpected=0,
        latency_us=Latency(p50=12.5, p99=40.0, max=41.2),
        foreign=0,
        seconds=1.25,
        stopped_by="count",
        max_loss=max_loss,
    )
