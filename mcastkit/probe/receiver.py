"""Receive a probe stream into :class:`StreamStats`, stopping at count, timeout or idleness."""

from __future__ import annotations

import functools
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mcastkit.net.mmsg import DatagramSlots
from mcastkit.probe.stats import StreamStats
from mcastkit.probe.wire import HEADER, HEADER_SIZE, MAGIC

BATCH = 64
#: A slot holds a datagram or a run the kernel coalesced (UDP GRO), up to 64 KiB.
SLOT_BYTES = 65_535
#: Big enough to ride out a scheduling hiccup at several hundred thousand datagrams per second.
RECEIVE_BUFFER_BYTES = 16 * 1024 * 1024


@dataclass
class ReceiveResult:
    stats: StreamStats
    stream_id: int | None = None
    #: Datagrams that were not probe datagrams, or belonged to another stream.
    foreign: int = 0
    seconds: float = 0.0
    stopped_by: str = "count"
    extra: dict[str, object] = field(default_factory=dict)


def receive_stream(
    sock: socket.socket,
    *,
    count: int,
    timeout: float,
    idle: float,
    progress: Callable[[ReceiveResult], None] | None = None,
    stream_id: int | None = None,
) -> ReceiveResult:
    """Count datagrams until ``count`` distinct ones arrived, ``timeout`` seconds passed in all,
    or ``idle`` seconds passed without a datagram after the first one. Never blocks longer
    than the socket timeout at a time.

    The first probe datagram fixes the stream id unless one is given; others are foreign.
    """
    result = ReceiveResult(stats=StreamStats(count), stream_id=stream_id)
    stats, record = result.stats, result.stats.record
    batch = DatagramSlots(sock, capacity=SLOT_BYTES, slots=BATCH, coalesce=True)
    start = time.monotonic()
    deadline = start + timeout
    last_arrival: float | None = None
    next_progress = start + 0.25
    while True:
        received = batch.receive(wait=True)
        now = time.monotonic()
        if received:
            arrived_ns = time.time_ns()
            last_arrival = now
            datagrams, foreign = parse_batch(batch, received)
            result.foreign += foreign
            for stream, sequence, sent_ns in datagrams:
                if result.stream_id is None:
                    result.stream_id = stream
                elif stream != result.stream_id:
                    result.foreign += 1
                    continue
                record(sequence, sent_ns, arrived_ns)
            if stats.complete:
                result.stopped_by = "count"
                break
        if now >= deadline:
            result.stopped_by = "timeout"
            break
        if last_arrival is not None and now - last_arrival >= idle:
            result.stopped_by = "idle"
            break
        if progress is not None and now >= next_progress:
            result.seconds = now - start
            progress(result)
            next_progress = now + 0.25
    result.seconds = time.monotonic() - start
    return result


def parse_batch(
    batch: DatagramSlots, received: list[tuple[int, bool, int]]
) -> tuple[list[tuple[int, int, int]], int]:
    """(stream id, sequence, send time) of each probe datagram just received, and how many were not."""
    view, unpack_from = batch.view, HEADER.unpack_from
    datagrams = []
    foreign = 0
    for offset, size, count in batch.runs(received):
        if size < HEADER_SIZE:
            foreign += count
        elif count == 1:
            magic, stream, sequence, sent_ns = unpack_from(view, offset)
            if magic == MAGIC:
                datagrams.append((stream, sequence, sent_ns))
            else:
                foreign += 1
        else:
            run = _run_layout(size).iter_unpack(view[offset : offset + size * count])
            probes = [
                (stream, sequence, sent_ns) for magic, stream, sequence, sent_ns in run if magic == MAGIC
            ]
            datagrams += probes
            foreign += count - len(probes)
    return datagrams, foreign


@functools.lru_cache(maxsize=64)
def _run_layout(size: int) -> struct.Struct:
    """A probe header followed by the rest of a ``size``-byte datagram, to unpack a run at once."""
    return struct.Struct(f"{HEADER.format}{size - HEADER_SIZE}x")
