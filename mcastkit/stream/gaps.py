"""In order, exactly once: what a receiver does with packets that arrive late, twice or never.

:class:`Gaps` takes numbered messages as they come (from the multicast group or from a
recovery) and heartbeats, hands back the messages that can now be delivered in order, and
says which ranges to ask for and when. It knows no sockets and no clock of its own, so its
rules are tested directly:

- A range is missing when a later number is seen (a packet, or a heartbeat's next number:
  tail loss). It is asked for after a random back-off (up to ``backoff`` seconds), so
  receivers that missed the same packet do not ask at the same instant, then again after
  ``retry`` seconds, doubling, until ``give_up`` seconds after it went missing or last saw a
  recovery make progress: then it is counted unrecovered and delivery moves past it. An answer
  that fills part of a range is followed by the next ask as soon as it stops coming.
- A message already delivered or already held is a duplicate and is dropped.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

DEFAULT_BACKOFF = 0.01
DEFAULT_RETRY = 0.1
DEFAULT_GIVE_UP = 5.0
#: Messages held out of order at most; past it the oldest gap is given up at once.
DEFAULT_MAX_HELD = 2_000_000
#: After a recovered packet, wait this long for the rest of the answer before asking again.
QUIET = 0.01
#: Separate ranges asked for one gap at a time at most (the rest at the next retry).
MAX_ASKS_PER_GAP = 64


@dataclass
class Gap:
    start: int
    end: int
    detected: float
    ask_at: float
    tries: int = 0
    #: When a recovery last brought part of it: it is given up ``give_up`` seconds after that.
    progress: float = 0.0


@dataclass
class GapCounts:
    received: int = 0
    delivered: int = 0
    recovered: int = 0
    unrecovered: int = 0
    duplicates: int = 0
    #: Recovered messages that were already there (a replay streams whole ranges).
    redundant: int = 0
    requests: int = 0
    gaps: int = 0
    #: Nanoseconds from a gap's detection to the delivery of each message that was in it.
    gap_fill: list[int] = field(default_factory=list)


class Gaps:
    def __init__(
        self,
        start: int | None = None,
        *,
        backoff: float = DEFAULT_BACKOFF,
        retry: float = DEFAULT_RETRY,
        give_up: float = DEFAULT_GIVE_UP,
        max_held: int = DEFAULT_MAX_HELD,
        rng: random.Random | None = None,
    ) -> None:
        #: The next number to deliver; None until the first packet says where the stream is.
        self.next = start
        #: One past the highest number known to exist.
        self.high = start if start is not None else 0
        self.held: dict[int, bytes] = {}
        #: Open gaps in order; the first starts at :attr:`next` (the earliest undelivered number).
        self.gaps: list[Gap] = []
        self.counts = GapCounts()
        self.backoff, self.retry, self.give_up, self.max_held = backoff, retry, give_up, max_held
        self._rng = rng or random.Random()
        self._ready: list[tuple[int, list[bytes]]] = []
        #: The numbers that came by recovery and are not yet delivered (see :meth:`take_recovered`).
        self._recovered: set[int] = set()

    def ready(self) -> list[tuple[int, list[bytes]]]:
        """The runs (first number, messages) deliverable now, in order; each is handed out once."""
        out, self._ready = self._ready, []
        return out

    # -- input -----------------------------------------------------------------------

    def add(self, first: int, messages: list[bytes], now: float, *, recovered: bool = False) -> None:
        """Messages ``first``, ``first + 1``, ... from the group, or from a recovery."""
        if not recovered:
            self.counts.received += len(messages)
        if self.next is None:
            self.next = self.high = first
        end = first + len(messages)
        self._known(first, now)
        self.high = max(self.high, end)
        if end <= self.next:
            self._duplicates(len(messages), recovered)
            return
        if first < self.next:
            self._duplicates(self.next - first, recovered)
            messages = messages[self.next - first :]
            first = self.next
        held = self.held
        fresh = 0
        if recovered:  # (first is no earlier than next here: nothing already delivered)
            self._recovered.update(n for n in range(first, end) if n not in held)
        if first == self.next and not held:
            fresh = len(messages)
            self._deliver(first, messages)
            self.next = end
            if self.gaps:
                self._close_behind(end, now)
        else:
            for number, message in enumerate(messages, first):
                if number in held:
                    self._duplicates(1, recovered)
                else:
                    held[number] = message
                    fresh += 1
        if recovered:
            self.counts.recovered += fresh
            if fresh:
                self._progress(first, end, now)
        if held:
            self._drain(now)
            while len(held) > self.max_held and self.gaps:
                self._abandon(now)

    def take_recovered(self, first: int, count: int) -> set[int]:
        """Which of the delivered numbers ``first`` to ``first + count - 1`` came by recovery
        (asked once, as they are delivered: they are forgotten)."""
        recovered = self._recovered
        if not recovered:
            return set()
        found = {n for n in range(first, first + count) if n in recovered}
        recovered -= found
        return found

    def _progress(self, first: int, end: int, now: float) -> None:
        """A recovery brought ``first`` to ``end - 1``: ask for the rest of those gaps once the
        answer has stopped coming (:data:`QUIET` after its last packet), not on the retry timer."""
        for gap in self.gaps:
            if gap.start < end and first < gap.end:
                gap.progress = now
                gap.tries = 0
                gap.ask_at = now + QUIET

    def _duplicates(self, count: int, recovered: bool) -> None:
        if recovered:
            self.counts.redundant += count
        else:
            self.counts.duplicates += count

    def heartbeat(self, next_sequence: int, now: float) -> None:
        """A heartbeat: every number below ``next_sequence`` exists."""
        if self.next is None:
            self.next = self.high = next_sequence
        self._known(next_sequence, now)

    def _known(self, end: int, now: float) -> None:
        """Every number below ``end`` exists: what is above :attr:`high` is missing."""
        if end > self.high:
            self.gaps.append(Gap(self.high, end, now, now + self._rng.uniform(0, self.backoff)))
            self.counts.gaps += 1
            self.high = end

    def _deliver(self, first: int, run: list[bytes]) -> None:
        self._ready.append((first, run))
        self.counts.delivered += len(run)

    def _drain(self, now: float) -> None:
        """Deliver held messages that follow on from :attr:`next`; close the gaps behind it."""
        held = self.held
        assert self.next is not None
        number = first = self.next
        run = []
        while number in held:
            run.append(held.pop(number))
            number += 1
        if run:
            self._deliver(first, run)
            self.next = number
        self._close_behind(number, now)

    def _close_behind(self, number: int, now: float) -> None:
        while self.gaps and self.gaps[0].end <= number:
            gap = self.gaps.pop(0)
            self.counts.gap_fill.extend([int((now - gap.detected) * 1e9)] * (gap.end - gap.start))
        if self.gaps and self.gaps[0].start < number:
            self.gaps[0].start = number

    # -- what to ask for -----------------------------------------------------------------

    def due(self, now: float, *, limit: int = 1 << 30) -> list[tuple[int, int]]:
        """(start, count) ranges to ask for now: every stretch still missing in each gap that is
        due, cut into ranges of at most ``limit`` (0: ask nothing); gives up the gaps open longer
        than ``give_up``, delivering what was held past them."""
        while self.gaps and now - max(self.gaps[0].detected, self.gaps[0].progress) >= self.give_up:
            self._abandon(now)
        if limit <= 0:
            return []
        asks = []
        held = self.held
        for gap in self.gaps:
            if now < gap.ask_at:
                continue
            asked = 0
            start = gap.start
            while start < gap.end and asked < MAX_ASKS_PER_GAP:
                while start < gap.end and start in held:
                    start += 1
                stop = start
                while stop < gap.end and stop not in held and stop - start < limit:
                    stop += 1
                if stop > start:
                    asks.append((start, stop - start))
                    asked += 1
                start = stop
            self.counts.requests += asked
            gap.tries += 1
            gap.ask_at = now + self.retry * (2 ** min(gap.tries - 1, 5)) * self._rng.uniform(1.0, 1.5)
        return asks

    def next_deadline(self) -> float | None:
        """When :meth:`due` next has something to do."""
        if not self.gaps:
            return None
        first = self.gaps[0]
        return min(min(g.ask_at for g in self.gaps), max(first.detected, first.progress) + self.give_up)

    def _abandon(self, now: float) -> None:
        """Give up the first gap: count what is missing in it, deliver what was held in it."""
        gap = self.gaps.pop(0)
        assert self.next is not None
        held = self.held
        run: list[bytes] = []
        first = self.next
        for number in range(self.next, gap.end):
            message = held.pop(number, None)
            if message is None:
                if run:
                    self._deliver(first, run)
                    run = []
                self.counts.unrecovered += 1
                first = number + 1
            else:
                run.append(message)
        if run:
            self._deliver(first, run)
        self.next = max(self.next, gap.end)
        self._drain(now)

    @property
    def outstanding(self) -> int:
        """Numbers known to exist and not yet delivered."""
        return 0 if self.next is None else self.high - self.next
