"""Watch any feed on a group (``probe recv --passive``): rate, sizes and silences.

A feed's datagrams carry no probe header, so loss cannot be counted; what a receiver can say
without one is whether datagrams arrive, how many and how large, and how often the group went
quiet for longer than ``gap`` seconds (a sender that stalls, a path that flaps).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from mcastkit.net.mmsg import DatagramSlots
from mcastkit.probe.receiver import BATCH, SLOT_BYTES, parse_batch


@dataclass(frozen=True)
class FeedReport:
    """What one passive receiver saw in ``seconds``."""

    group: str
    interface: str
    seconds: float
    datagrams: int
    bytes: int
    size_min: int | None
    size_max: int | None
    #: Datagrams that carried the probe's header: a probe sends here too.
    probe_datagrams: int
    #: Silences of ``gap`` seconds or more: between datagrams, and from the last one to the end.
    gap: float
    silences: int
    longest_silence: float

    @property
    def rate(self) -> float:
        return self.datagrams / self.seconds if self.seconds > 0 else 0.0

    @property
    def megabits_per_second(self) -> float:
        return self.bytes * 8 / self.seconds / 1e6 if self.seconds > 0 else 0.0

    @property
    def size_mean(self) -> float | None:
        return self.bytes / self.datagrams if self.datagrams else None

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "rate": round(self.rate, 1), "size_mean": self.size_mean}


def watch_feed(
    sock: socket.socket,
    *,
    group: str,
    interface: str,
    seconds: float,
    gap: float,
    keep_running: Callable[[], bool],
) -> FeedReport:
    """Receive for ``seconds`` (or until ``keep_running`` says stop) and report what arrived."""
    batch = DatagramSlots(sock, capacity=SLOT_BYTES, slots=BATCH, coalesce=True)
    start = time.monotonic()
    datagrams = total = probes = silences = 0
    size_min: int | None = None
    size_max: int | None = None
    longest = 0.0
    last: float | None = None
    while keep_running() and time.monotonic() - start < seconds:
        received = batch.receive(wait=True)
        if not received:
            continue
        now = time.monotonic()
        if last is not None and now - last >= gap:
            silences += 1
        longest = max(longest, now - (last if last is not None else now))
        last = now
        for _offset, size, count in batch.runs(received):
            datagrams += count
            total += size * count
            size_min = size if size_min is None else min(size_min, size)
            size_max = size if size_max is None else max(size_max, size)
        probes += len(parse_batch(batch, received)[0])
    end = time.monotonic()
    if last is not None and end - last >= gap:
        silences += 1
        longest = max(longest, end - last)
    return FeedReport(
        group=group,
        interface=interface,
        seconds=round(end - start, 3),
        datagrams=datagrams,
        bytes=total,
        size_min=size_min,
        size_max=size_max,
        probe_datagrams=probes,
        gap=gap,
        silences=silences,
        longest_silence=round(longest, 3),
    )
