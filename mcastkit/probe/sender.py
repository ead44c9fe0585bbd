"""A paced probe stream: ``rate`` datagrams per second, sent in batches, never a sleep per datagram."""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from mcastkit.net.mmsg import DatagramSlots
from mcastkit.probe.wire import HEADER, MAGIC

#: Upper bound on one burst: keeps the send timestamp of the last datagram in a burst honest.
MAX_BURST = 32
_PR_SET_TIMERSLACK = 29


@dataclass(frozen=True)
class SendReport:
    stream_id: int
    sent: int
    seconds: float

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
    *,
    rate: int,
    count: int,
    size: int,
    stream_id: int,
    progress: Callable[[int], None] | None = None,
    clock: Callable[[], int] = time.time_ns,
) -> SendReport:
    """Send ``count`` datagrams of ``size`` bytes at ``rate`` per second (0: as fast as possible).

    Each turn sends every datagram that is due (up to :data:`MAX_BURST`) with one system call,
    then sleeps until the next one is due. A sender that fell behind (descheduled) catches up
    back to back, :data:`MAX_BURST` at a time, as a real feed does after a stall; when the
    machine cannot sustain the rate the stream runs late and the report says what rate it achieved.
    """
    tighten_timer_slack()
    batch = DatagramSlots(sock, capacity=size, slots=MAX_BURST)
    view, pack_into, stride = batch.view, HEADER.pack_into, batch.stride
    start = time.monotonic_ns()
    next_progress = start
    sent = 0
    while sent < count:
        now = time.monotonic_ns()
        if rate:
            due = min(count, (now - start) * rate // 1_000_000_000 + 1) - sent
            if due <= 0:
                time.sleep((start + sent * 1_000_000_000 // rate - now) / 1e9)
                continue
        else:
            due = count - sent
        burst = min(due, MAX_BURST)
        # One timestamp per burst, taken just before the system call that sends it.
        stamp = clock()
        for index in range(burst):
            pack_into(view, index * stride, MAGIC, stream_id, sent + index, stamp)
        done = batch.send(burst, size)
        if done == 0:
            time.sleep(0.0001)  # the kernel is out of buffer space: let the queue drain
        sent += done
        if progress is not None and now >= next_progress:
            progress(sent)
            next_progress = now + 250_000_000
    seconds = (time.monotonic_ns() - start) / 1e9
    if progress is not None:
        progress(sent)
    return SendReport(stream_id=stream_id, sent=sent, seconds=seconds)
