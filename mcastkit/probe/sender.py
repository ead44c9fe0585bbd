"""A paced probe stream: ``rate`` datagrams per second, sent in batches, never a sleep per datagram."""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from mcastkit.net.mmsg import BatchSender, Destination
from mcastkit.probe.wire import HEADER, MAGIC, SizeRange

#: Upper bound on one burst: keeps the send timestamp of the last datagram in a burst honest.
MAX_BURST = 32
#: The pacing tick: a turn waits until this much of the stream is due, so at 50k msg/s it
#: sends 5 every 100 µs instead of one at a time (each turn costs more CPU than a datagram).
TICK_NS = 100_000
#: Sizes drawn from a range repeat after this many datagrams (a draw per datagram costs more).
SIZE_CYCLE = 4096
_PR_SET_TIMERSLACK = 29


@dataclass(frozen=True)
class SendReport:
    stream_id: int
    sent: int
    seconds: float
    #: datagrams the kernel refused (their sequence numbers are skipped; receivers count them lost)
    send_errors: int = 0

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0


def new_stream_id() -> int:
    return int.from_bytes(os.urandom(4), "big")


def tighten_timer_slack() -> None:
    """Ask for 1 µs sleep precision (default 50 µs) so short pacing sleeps stay short. Best effort."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0)


def send_stream(
    sock: socket.socket,
    destination: tuple[str, int],
    *,
    rate: int,
    count: int,
    size: SizeRange,
    stream_id: int,
    progress: Callable[[int], None] | None = None,
    clock: Callable[[], int] = time.time_ns,
    keep_running: Callable[[], bool] = lambda: True,
) -> SendReport:
    """Send ``count`` datagrams of ``size`` bytes at ``rate`` per second (0: as fast as possible).

    ``count`` 0 sends until ``keep_running`` says stop (it is asked before every burst).

    With a range of sizes, each datagram's is drawn from it (uniformly; the same sequence
    for the same stream id, so a run can be repeated).

    Each turn waits until a tick's worth (:data:`TICK_NS`) of datagrams is due, then sends
    every datagram that is due (up to :data:`MAX_BURST`) with one system call (one UDP GSO
    message where the kernel takes it: see :class:`BatchSender`). A sender that fell behind
    (descheduled) catches up back to back, :data:`MAX_BURST` at a time, as a real feed does
    after a stall; when the machine cannot sustain the rate the stream runs late and the
    report says what rate it achieved. Datagrams the kernel refuses are counted in the
    report's ``send_errors``; their sequence numbers are not sent again.
    """
    tighten_timer_slack()
    errors: list[int] = []
    sender = BatchSender(sock, lambda code, _tag, _length: errors.append(code))
    target = Destination(*destination)
    sizes = _sizes(size, stream_id)
    cycle = len(sizes)
    slot = size.high
    burst_buffer = (ctypes.c_char * (slot * MAX_BURST))()
    base = ctypes.addressof(burst_buffer)
    pack_into = HEADER.pack_into
    # Datagrams a turn waits for: what falls due in one tick (at least one, at most a burst).
    per_turn = min(MAX_BURST, max(1, rate * TICK_NS // 1_000_000_000))
    start = time.monotonic_ns()
    next_progress = start
    sequence = 0
    end = count or 2**64  # a sequence number never reaches 2**64
    while sequence < end and keep_running():
        now = time.monotonic_ns()
        if rate:
            due = min(end, (now - start) * rate // 1_000_000_000 + 1) - sequence
            wanted = min(per_turn, end - sequence)
            if due < wanted:
                # Sleep until the last datagram of the turn is due (the first waits at most a tick).
                time.sleep(max(start + (sequence + wanted - 1) * 1_000_000_000 // rate - now, 0) / 1e9)
                continue
        else:
            due = end - sequence
        burst = min(due, MAX_BURST)
        # One timestamp per burst, taken just before the system call that sends it.
        stamp = clock()
        for index in range(burst):
            pack_into(burst_buffer, index * slot, MAGIC, stream_id, sequence + index, stamp)
        if cycle == 1:  # one size: the burst lies back to back
            sender.add_run(base, slot, burst * slot, target, None)
        else:
            for index in range(burst):
                sender.add(base + index * slot, sizes[(sequence + index) % cycle], target, None)
        sender.flush()
        sequence += burst
        if progress is not None and now >= next_progress:
            progress(sequence - len(errors))
            next_progress = now + 250_000_000
    seconds = (time.monotonic_ns() - start) / 1e9
    sent = sequence - len(errors)
    if progress is not None:
        progress(sent)
    return SendReport(stream_id=stream_id, sent=sent, seconds=seconds, send_errors=len(errors))


def _sizes(size: SizeRange, stream_id: int) -> list[int]:
    """The payload size of datagram ``n`` is ``sizes[n % len(sizes)]``."""
    if size.low == size.high:
        return [size.low]
    draw = random.Random(stream_id)
    return [draw.randint(size.low, size.high) for _ in range(SIZE_CYCLE)]
