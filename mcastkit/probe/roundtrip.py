"""Round-trip latency without synchronized clocks (the mtools ``mpong`` idea).

``rtt`` sends one probe datagram to a group and waits for ``echo``, on another host, to
re-emit it to a reply group; the round trip is measured on one clock. Each datagram waits
at most ``loss_timeout`` for its echo, so a lost datagram costs that and no more.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mcastkit.probe.stats import latency_summary
from mcastkit.probe.wire import HEADER, HEADER_SIZE, MAGIC, MAX_SIZE


@dataclass
class RoundTripResult:
    sent: int = 0
    answered: int = 0
    #: Echoes that came back after their datagram had been given up as lost.
    late: int = 0
    rtts_ns: list[int] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.sent - self.answered

    def summary(self) -> dict[str, object]:
        return {
            "sent": self.sent,
            "answered": self.answered,
            "lost": self.lost,
            "loss": round(self.lost / self.sent, 6) if self.sent else 0.0,
            "late": self.late,
            "rtt_us": latency_summary(self.rtts_ns),
        }


def echo(
    listen: socket.socket,
    reply: socket.socket,
    *,
    count: int,
    timeout: float,
    keep_running: Callable[[], bool] = lambda: True,
) -> int:
    """Re-emit every probe datagram from ``listen`` on ``reply`` until ``count`` echoed (0: no limit)
    or ``timeout`` seconds (0: no limit) passed; return how many were echoed."""
    buffer = bytearray(MAX_SIZE)
    echoed = 0
    deadline = time.monotonic() + timeout if timeout else None
    while keep_running() and (not count or echoed < count):
        if deadline is not None and time.monotonic() >= deadline:
            break
        try:
            length = listen.recv_into(buffer)
        except (BlockingIOError, TimeoutError, InterruptedError):
            continue
        if length < HEADER_SIZE or buffer[:4] != MAGIC:
            continue
        try:
            reply.send(memoryview(buffer)[:length])
        except OSError:
            continue  # a full queue loses this echo; rtt counts it as lost
        echoed += 1
    return echoed


def measure_rtt(
    send: socket.socket,
    listen: socket.socket,
    *,
    count: int,
    size: int,
    interval: float,
    loss_timeout: float,
    stream_id: int,
    progress: Callable[[RoundTripResult], None] | None = None,
) -> RoundTripResult:
    """Ping-pong ``count`` datagrams one at a time, ``interval`` seconds apart."""
    result = RoundTripResult()
    outgoing = bytearray(size)
    incoming = bytearray(MAX_SIZE)
    for sequence in range(count):
        started = time.monotonic_ns()
        HEADER.pack_into(outgoing, 0, MAGIC, stream_id, sequence, started)
        send.send(outgoing)
        result.sent += 1
        give_up = started + int(loss_timeout * 1e9)
        while time.monotonic_ns() < give_up:
            try:
                length = listen.recv_into(incoming)
            except (BlockingIOError, TimeoutError, InterruptedError):
                continue
            if length < HEADER_SIZE:
                continue
            magic, stream, echoed_sequence, sent_ns = HEADER.unpack_from(incoming)
            if magic != MAGIC or stream != stream_id:
                continue
            if echoed_sequence == sequence:
                result.answered += 1
                result.rtts_ns.append(time.monotonic_ns() - sent_ns)
                break
            result.late += 1
        if progress is not None:
            progress(result)
        remaining = interval - (time.monotonic_ns() - started) / 1e9
        if remaining > 0 and sequence + 1 < count:
            time.sleep(remaining)
    return result
