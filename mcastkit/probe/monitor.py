"""An open-ended probe stream, reported interval by interval (``probe recv --count 0``).

A finite stream has a known length, so loss is what never arrived. A stream with no end is
judged as it goes: each interval says how many sequence numbers were skipped and not
(yet) filled, with latency percentiles of that interval alone.
"""

from __future__ import annotations

import socket
import time
from array import array
from collections.abc import Callable
from typing import Any

from mcastkit.net.mmsg import DatagramSlots
from mcastkit.probe.receiver import BATCH, SLOT_BYTES, parse_batch
from mcastkit.probe.stats import latency_summary

#: Sequence numbers remembered for telling a duplicate from a late datagram.
WINDOW = 1 << 16


class RunningStats:
    """What a receiver saw of a stream with no known end, since the last :meth:`interval`.

    - *missing*: sequence numbers skipped and not arrived (yet); one that arrives late fills
      its gap and counts as *reordered*; an interval's *lost* is how much ``missing`` grew in
      it (a late datagram can make it negative);
    - *duplicates*: a sequence number seen before, among the last :data:`WINDOW`;
    - the first datagram heard starts the count: joining late is not loss. A new stream id
      (the sender started over) starts it again and counts a *restart*.
    """

    def __init__(self) -> None:
        self.highest = -1
        self.missing = 0
        self.restarts = 0
        self._seen = bytearray(WINDOW)
        self._start_interval(time.monotonic())

    def _start_interval(self, now: float) -> None:
        self.received = self.duplicates = self.reordered = 0
        self.latencies_ns: array[int] = array("q")
        self._missing_before = self.missing
        self._highest_before = self.highest
        self._started = now

    def restart(self) -> None:
        """The sender started over: forget its sequence numbers (what is missing stays counted)."""
        self.restarts += 1
        self.highest = self._highest_before = -1
        self._seen = bytearray(WINDOW)

    def record(self, sequence: int, sent_ns: int, received_ns: int) -> None:
        self.received += 1
        highest = self.highest
        if sequence > highest:
            if highest >= 0:
                self.missing += sequence - highest - 1
            self._forget(highest + 1, sequence)
            self.highest = sequence
        elif sequence <= highest - WINDOW:
            self.reordered += 1  # too old to tell from a duplicate
        elif self._seen[sequence % WINDOW]:
            self.duplicates += 1
            return
        else:
            self.missing -= 1
            self.reordered += 1
        self._seen[sequence % WINDOW] = 1
        self.latencies_ns.append(received_ns - sent_ns)

    def _forget(self, first: int, last: int) -> None:
        """Clear the slots of sequence numbers ``first`` to ``last`` (reused from older ones)."""
        if last - first + 1 >= WINDOW:
            self._seen[:] = bytes(WINDOW)
            return
        start, stop = first % WINDOW, last % WINDOW + 1
        if start < stop:
            self._seen[start:stop] = bytes(stop - start)
        else:
            self._seen[start:] = bytes(WINDOW - start)
            self._seen[:stop] = bytes(stop)

    def interval(self, now: float) -> dict[str, Any]:
        """The counts since the last call, then start a new interval."""
        lost = self.missing - self._missing_before
        expected = self.highest - self._highest_before if self._highest_before >= 0 else self.received
        summary = {
            "seconds": round(now - self._started, 3),
            "received": self.received,
            "lost": lost,
            "loss": round(lost / expected, 6) if expected > 0 else 0.0,
            "duplicates": self.duplicates,
            "reordered": self.reordered,
            "missing": self.missing,
            "restarts": self.restarts,
            "latency_us": latency_summary(self.latencies_ns),
        }
        self._start_interval(now)
        return summary


def monitor_stream(
    sock: socket.socket,
    *,
    every: float,
    report: Callable[[int | None, dict[str, Any]], None],
    keep_running: Callable[[], bool],
    stream_id: int | None = None,
    timeout: float | None = None,
) -> RunningStats:
    """Receive until ``keep_running`` says stop (or ``timeout`` seconds), reporting every ``every`` s.

    ``report`` gets the stream id heard and the interval's counts (the last, partial interval
    too). With ``stream_id`` only that stream counts; without, the stream heard last does.
    """
    stats = RunningStats()
    batch = DatagramSlots(sock, capacity=SLOT_BYTES, slots=BATCH, coalesce=True)
    current = stream_id
    foreign = 0
    started = time.monotonic()
    next_report = started + every
    while keep_running():
        received = batch.receive(wait=True)
        if received:
            arrived_ns = time.time_ns()
            datagrams, others = parse_batch(batch, received)
            foreign += others
            for stream, sequence, sent_ns in datagrams:
                if stream != current:
                    if stream_id is not None:
                        foreign += 1
                        continue
                    if current is not None:
                        stats.restart()
                    current = stream
                stats.record(sequence, sent_ns, arrived_ns)
        now = time.monotonic()
        if timeout is not None and now - started >= timeout:
            break
        if now >= next_report:
            report(current, {**stats.interval(now), "foreign": foreign})
            foreign = 0
            next_report = max(next_report + every, now)
    report(current, {**stats.interval(time.monotonic()), "foreign": foreign})
    return stats
