"""The ingress's replay window: the recent stream of every group, kept so a peer that comes back
after a link outage can take what it missed (see "Resume" in :mod:`mcastkit.relay`).

Each entry is one batch of one stream exactly as it was framed for the peers (the bytes object
already written to them: keeping it costs no copy), in arrival order across streams, so a replay
repeats the original interleaving. The window is bounded by bytes and by age; the oldest entries
leave first, whatever their stream, so per stream what is kept is always a contiguous tail.
"""

from __future__ import annotations

import sys
from array import array
from typing import NamedTuple

from mcastkit.net.mmsg import run_datagrams
from mcastkit.relay.frame import HEADER, HEADER_SIZE, MAGIC, VERSION, FrameType

DEFAULT_REPLAY_SECONDS = 20.0
#: At 100k msg/s of 64 B a datagram takes 96 B framed; where each arrives on its own (a batch
#: of one, plus ENTRY_OVERHEAD) 256 MiB holds 15 s of the stream, in batches of 4 or more the
#: whole 20 s. A 10 s outage needs about 15 s: the relays notice it after 3 heartbeats, and
#: the redial waits out a dropped SYN.
DEFAULT_REPLAY_BYTES = 256 * 1024 * 1024

_RUN = int(FrameType.RUN)


class Kept(NamedTuple):
    """One batch of one stream: ``datagrams`` numbered from ``first``."""

    key: int  # group << 16 | port
    first: int
    datagrams: int
    received_ns: int
    chunk: bytes


#: What an entry costs besides its frames: four 8-byte numbers, a list slot, a bytes object's header.
ENTRY_OVERHEAD = 4 * 8 + 8 + sys.getsizeof(b"")


class ReplayWindow:
    """Entries by absolute index: :attr:`start` is the oldest kept, :attr:`end` one past the newest.

    The numbers live in arrays and the chunks in a list, so an entry costs its frames and
    :data:`ENTRY_OVERHEAD` bytes, both counted in :attr:`bytes` (what ``max_bytes`` bounds).
    """

    __slots__ = (
        "_chunks",
        "_counts",
        "_firsts",
        "_head",
        "_keys",
        "_times",
        "bytes",
        "evicted",
        "max_bytes",
        "max_ns",
    )

    def __init__(self, *, max_bytes: int = DEFAULT_REPLAY_BYTES, max_seconds: float = DEFAULT_REPLAY_SECONDS):
        self.max_bytes = max_bytes
        self.max_ns = int(max_seconds * 1e9)
        self._keys, self._firsts, self._counts, self._times = (array("Q") for _ in range(4))
        self._chunks: list[bytes] = []
        #: index in the arrays of the oldest entry kept (they are compacted now and then)
        self._head = 0
        #: entries evicted so far: the absolute index of the oldest kept
        self.evicted = 0
        self.bytes = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0 and self.max_ns > 0

    @property
    def start(self) -> int:
        return self.evicted

    @property
    def end(self) -> int:
        return self.evicted + len(self._chunks) - self._head

    def __getitem__(self, index: int) -> Kept:
        """The entry at absolute ``index`` (``start <= index < end``)."""
        at = self._head + index - self.evicted
        return Kept(self._keys[at], self._firsts[at], self._counts[at], self._times[at], self._chunks[at])

    def keep(self, key: int, first: int, count: int, received_ns: int, chunk: bytes) -> None:
        if not self.enabled:
            return
        self._keys.append(key)
        self._firsts.append(first)
        self._counts.append(count)
        self._times.append(received_ns)
        chunks = self._chunks
        chunks.append(chunk)
        self.bytes += len(chunk) + ENTRY_OVERHEAD
        oldest_ns, times, head = received_ns - self.max_ns, self._times, self._head
        while head < len(chunks) and (self.bytes > self.max_bytes or times[head] < oldest_ns):
            self.bytes -= len(chunks[head]) + ENTRY_OVERHEAD
            chunks[head] = b""  # free the chunk now; the slot is never read again
            head += 1
        self.evicted += head - self._head
        self._head = head
        if head > 4096 and head * 2 > len(chunks):
            for column in (self._keys, self._firsts, self._counts, self._times, chunks):
                del column[:head]
            self._head = 0


def frames_from(chunk: bytes, sequence: int) -> bytes:
    """The frames of ``chunk`` (one stream's batch) from datagram ``sequence`` on: whole frames
    before it are left out, a RUN that starts before it is cut to begin there."""
    offset = 0
    while offset < len(chunk):
        _magic, _version, frame_type, length, group, port, segment, first, received_ns = HEADER.unpack_from(
            chunk, offset
        )
        count = run_datagrams(length, segment) if frame_type == _RUN else 1
        payload = offset + HEADER_SIZE
        if first + count > sequence:
            if first >= sequence:
                return chunk[offset:]
            skip = (sequence - first) * segment
            header = HEADER.pack(
                MAGIC, VERSION, _RUN, length - skip, group, port, segment, sequence, received_ns
            )
            return header + chunk[payload + skip : payload + length] + chunk[payload + length :]
        offset = payload + length
    return b""
