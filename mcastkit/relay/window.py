"""The ingress's replay window: the recent stream of every group, kept so a peer that comes back
after a link outage can take what it missed (see "Resume" in :mod:`mcastkit.relay`).

Each entry is one batch of one stream exactly as it was framed for the peers (the bytes object
already written to them: keeping it costs no copy), in arrival order across streams, so a replay
repeats the original interleaving. The window is bounded by bytes and by age; the oldest entries
leave first, whatever their stream, so per stream what is kept is always a contiguous tail.
"""

from __future__ import annotations

from typing import NamedTuple

from mcastkit.net.mmsg import run_datagrams
from mcastkit.relay.frame import HEADER, HEADER_SIZE, MAGIC, VERSION, FrameType

DEFAULT_REPLAY_SECONDS = 20.0
#: 20 s at 100k msg/s of 64 B: one DATA frame a datagram (32 + 64 B) is 192 MB; bursts the host
#: coalesced (RUN frames) take less.
DEFAULT_REPLAY_BYTES = 192 * 1024 * 1024

_RUN = int(FrameType.RUN)


class Kept(NamedTuple):
    """One batch of one stream: ``datagrams`` numbered from ``first``."""

    key: int  # group << 16 | port
    first: int
    datagrams: int
    received_ns: int
    chunk: bytes


_GONE = Kept(0, 0, 0, 0, b"")


class ReplayWindow:
    """Entries by absolute index: :attr:`start` is the oldest kept, :attr:`end` one past the newest."""

    __slots__ = ("_entries", "_head", "bytes", "evicted", "max_bytes", "max_ns")

    def __init__(self, *, max_bytes: int = DEFAULT_REPLAY_BYTES, max_seconds: float = DEFAULT_REPLAY_SECONDS):
        self.max_bytes = max_bytes
        self.max_ns = int(max_seconds * 1e9)
        self._entries: list[Kept] = []
        #: index in ``_entries`` of the oldest entry kept (the list is compacted now and then)
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
        return self.evicted + len(self._entries) - self._head

    def __getitem__(self, index: int) -> Kept:
        """The entry at absolute ``index`` (``start <= index < end``)."""
        return self._entries[self._head + index - self.evicted]

    def keep(self, key: int, first: int, count: int, received_ns: int, chunk: bytes) -> None:
        if not self.enabled:
            return
        self._entries.append(Kept(key, first, count, received_ns, chunk))
        self.bytes += len(chunk)
        entries = self._entries
        oldest_ns = received_ns - self.max_ns
        head = self._head
        while head < len(entries) and (self.bytes > self.max_bytes or entries[head].received_ns < oldest_ns):
            self.bytes -= len(entries[head].chunk)
            entries[head] = _GONE  # free the chunk now; the slot is never read again
            head += 1
        self.evicted += head - self._head
        self._head = head
        if head > 4096 and head * 2 > len(entries):
            del entries[:head]
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
