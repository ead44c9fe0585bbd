"""Counting a probe stream: loss, duplicates, reordering and latency percentiles."""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable


def percentile(sorted_values: list[int] | array[int], fraction: float) -> int | None:
    """Nearest-rank percentile of already sorted values; ``None`` when there are none."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(round(fraction * len(sorted_values), 9)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_summary(samples_ns: Iterable[int]) -> dict[str, float | None]:
    """p50/p99/max in microseconds (rounded to 0.1 µs), ``None`` without samples."""
    ordered = sorted(samples_ns)

    def micros(value: int | None) -> float | None:
        return None if value is None else round(value / 1000, 1)

    return {
        "p50": micros(percentile(ordered, 0.50)),
        "p99": micros(percentile(ordered, 0.99)),
        "max": micros(ordered[-1] if ordered else None),
    }


class LossCounts:
    """``lost`` and ``loss`` of what knows how many datagrams it ``expected`` and how many
    distinct ones arrived (``unique``): a receiver's running stats and its final report alike."""

    expected: int
    unique: int

    @property
    def lost(self) -> int:
        return self.expected - self.unique

    @property
    def loss(self) -> float:
        """The share of the stream that never arrived (0 for an empty stream)."""
        return self.lost / self.expected if self.expected else 0.0


class StreamStats(LossCounts):
    """What one receiver saw of a stream whose sequence numbers run from 0 to ``expected - 1``.

    - a *duplicate* is a sequence number seen before;
    - a *reordered* datagram arrives after one with a higher sequence number;
    - *unexpected* datagrams carry a sequence number outside the stream (a bigger sender run);
    - *lost* is what never arrived: ``expected - unique``.
    """

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.received = 0
        self.unique = 0
        self.duplicates = 0
        self.reordered = 0
        self.unexpected = 0
        self.highest = -1
        self.latencies_ns: array[int] = array("q")
        self._seen = bytearray(expected)

    def record(self, sequence: int, sent_ns: int, received_ns: int) -> None:
        self.received += 1
        if sequence >= self.expected:
            self.unexpected += 1
            return
        if self._seen[sequence]:
            self.duplicates += 1
            return
        self._seen[sequence] = 1
        self.unique += 1
        if sequence < self.highest:
            self.reordered += 1
        else:
            self.highest = sequence
        self.latencies_ns.append(received_ns - sent_ns)

    @property
    def complete(self) -> bool:
        return self.unique >= self.expected
