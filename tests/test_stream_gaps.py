"""Gaps: in order, exactly once, whatever order packets arrive in; what is asked for, and when."""

from __future__ import annotations

import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from mcastkit.stream.gaps import Gaps


def msgs(first: int, count: int) -> list[bytes]:
    return [str(n).encode() for n in range(first, first + count)]


def delivered(gaps: Gaps) -> list[int]:
    return [first + i for first, run in gaps.ready() for i, _ in enumerate(run)]


def test_in_order_packets_are_delivered_at_once() -> None:
    gaps = Gaps()
    gaps.add(10, msgs(10, 3), 0.0)
    gaps.add(13, msgs(13, 2), 0.0)
    assert delivered(gaps) == [10, 11, 12, 13, 14]
    assert (gaps.counts.gaps, gaps.counts.duplicates) == (0, 0)


def test_a_gap_is_asked_for_after_a_back_off_and_filled() -> None:
    gaps = Gaps(backoff=0.01, retry=0.1, rng=random.Random(1))
    gaps.add(1, msgs(1, 5), 0.0)
    gaps.add(9, msgs(9, 2), 1.0)
    assert delivered(gaps) == [1, 2, 3, 4, 5]
    # Not at once: after the random back-off (this seed: 1.3 ms), then once.
    assert 1.0 < gaps.gaps[0].ask_at <= 1.01
    assert gaps.due(1.0) == []
    assert gaps.due(1.011) == [(6, 3)]
    assert gaps.counts.requests == 1
    assert gaps.due(1.02) == []  # asked: not again before the retry
    gaps.add(6, msgs(6, 3), 1.05, recovered=True)
    assert delivered(gaps) == [6, 7, 8, 9, 10]
    assert gaps.counts.recovered == 3 and gaps.counts.unrecovered == 0
    assert gaps.gaps == [] and gaps.held == {}
    assert len(gaps.counts.gap_fill) == 3
    assert all(abs(ns - 50_000_000) < 1000 for ns in gaps.counts.gap_fill)


def test_a_heartbeat_reveals_tail_loss() -> None:
    gaps = Gaps(backoff=0.0, rng=random.Random(2))
    gaps.add(1, msgs(1, 4), 0.0)
    gaps.heartbeat(5, 1.0)
    assert gaps.due(1.0) == []
    gaps.heartbeat(8, 2.0)
    assert gaps.due(2.0) == [(5, 3)]


def test_retries_back_off_and_the_gap_is_given_up() -> None:
    gaps = Gaps(backoff=0.0, retry=0.1, give_up=1.0, rng=random.Random(3))
    gaps.add(1, msgs(1, 1), 0.0)
    gaps.add(5, msgs(5, 2), 0.0)
    times = [t / 1000 for t in range(0, 1000)]
    asked_at = [t for t in times if gaps.due(t)]
    gaps_between = [b - a for a, b in itertools.pairwise(asked_at)]
    assert len(asked_at) <= 5
    assert all(later >= earlier for earlier, later in itertools.pairwise(gaps_between))
    delivered(gaps)
    gaps.due(1.0)
    assert delivered(gaps) == [5, 6]
    assert gaps.counts.unrecovered == 3
    gaps.add(7, msgs(7, 1), 1.1)
    assert delivered(gaps) == [7]


def test_only_what_is_still_missing_is_asked_for() -> None:
    gaps = Gaps(backoff=0.0, rng=random.Random(4))
    gaps.add(1, msgs(1, 1), 0.0)
    gaps.add(20, msgs(20, 1), 0.0)
    gaps.add(5, msgs(5, 3), 0.0)  # late, out of order: 2-4 and 8-19 still missing
    assert gaps.due(0.0) == [(2, 3), (8, 12)]
    assert gaps.due(0.5, limit=5) == [(2, 3), (8, 5), (13, 5), (18, 2)]
    assert gaps.due(0.5, limit=0) == []
    assert gaps.due(10.0) == []  # past give_up (5 s): given up, what was held delivered
    assert delivered(gaps) == [1, 5, 6, 7, 20]


def test_a_late_joiner_starts_at_its_number() -> None:
    gaps = Gaps(100, backoff=0.0)
    gaps.add(150, msgs(150, 5), 0.0)
    assert delivered(gaps) == []
    assert gaps.due(0.0, limit=20) == [(100, 20), (120, 20), (140, 10)]
    gaps.add(100, msgs(100, 50), 0.1, recovered=True)
    assert delivered(gaps) == list(range(100, 155))


def test_the_held_limit_gives_up_the_oldest_gap() -> None:
    gaps = Gaps(max_held=10)
    gaps.add(1, msgs(1, 1), 0.0)
    gaps.add(3, msgs(3, 11), 0.0)
    assert delivered(gaps) == [1, *range(3, 14)]
    assert gaps.counts.unrecovered == 1


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=1, max_value=60), st.randoms(use_true_random=False), st.floats(0, 0.5))
def test_any_arrival_order_with_duplicates_delivers_each_once_in_order(
    count: int, rnd: random.Random, dup_share: float
) -> None:
    # Packets of 1-4 messages, shuffled locally, some repeated, some lost and then recovered.
    packets, n = [], 1
    while n <= count:
        size = rnd.randint(1, 4)
        packets.append((n, msgs(n, min(size, count + 1 - n))))
        n += size
    arrivals = [p for p in packets if rnd.random() > 0.2]
    arrivals += [p for p in packets if rnd.random() < dup_share]
    rnd.shuffle(arrivals)
    gaps = Gaps(1, backoff=0.0, rng=random.Random(0))
    got: list[int] = []
    for first, batch in arrivals:
        gaps.add(first, batch, 0.0)
        got += delivered(gaps)
    gaps.heartbeat(count + 1, 0.0)
    for start, length in gaps.due(0.0):
        gaps.add(start, msgs(start, length), 0.1, recovered=True)
        got += delivered(gaps)
    got += delivered(gaps)
    assert got == list(range(1, count + 1))
    assert gaps.counts.unrecovered == 0
