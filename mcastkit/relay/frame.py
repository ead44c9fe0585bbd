"""Relay frame encoding and an incremental decoder (format in :mod:`mcastkit.relay`)."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from enum import IntEnum

from mcastkit.net.mmsg import MAX_SEGMENTS

MAGIC = 0x4D4B
VERSION = 3
#: magic, version, type, length, group, port, segment, sequence, time_ns
HEADER = struct.Struct("!HBBIIHHQQ")
HEADER_SIZE = HEADER.size
#: Largest payload a reader accepts; anything longer is hostile or corrupt.
MAX_PAYLOAD = 65535
#: Most datagrams in one RUN frame: what one UDP GSO message holds, so the egress sends it as one
MAX_RUN = MAX_SEGMENTS


class FrameType(IntEnum):
    DATA = 1
    HEARTBEAT = 2
    HELLO = 3
    PROOF = 4
    BYE = 5
    RUN = 6
    RESUME = 7
    SEAL = 8


_MAGIC_BYTES = MAGIC.to_bytes(2, "big")
_KNOWN_TYPES = frozenset(int(t) for t in FrameType)
_RUN = int(FrameType.RUN)

#: (type, group, port, segment, sequence, time_ns, payload); group is the IPv4 address as an int.
RawFrame = tuple[int, int, int, int, int, int, memoryview]
#: The same with the payload as (start, stop) offsets into the decoder's buffer.
SpanFrame = tuple[int, int, int, int, int, int, int, int]


#: A RESUME payload is a list of (group, port, next sequence wanted), one per stream.
RESUME_ENTRY = struct.Struct("!IHQ")
#: Streams one RESUME can name (its payload must fit a frame).
MAX_RESUME_STREAMS = MAX_PAYLOAD // RESUME_ENTRY.size
#: A sequence number this far past the next expected is no gap but a forged or broken stream
#: (2**40 is 30 hours at 10 million datagrams a second): a reader closes the link.
MAX_SEQUENCE_JUMP = 2**40


class FrameError(ValueError):
    """The byte stream is not a valid relay stream; the connection must be closed."""


def encode(
    frame_type: FrameType,
    payload: bytes = b"",
    *,
    group: int = 0,
    port: int = 0,
    segment: int = 0,
    sequence: int = 0,
    time_ns: int = 0,
) -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise FrameError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    header = HEADER.pack(MAGIC, VERSION, frame_type, len(payload), group, port, segment, sequence, time_ns)
    return header + payload


def parse_header(
    data: bytes | bytearray | memoryview, offset: int = 0
) -> tuple[int, int, int, int, int, int, int]:
    """Validate the header at ``offset``; return (type, length, group, port, segment, sequence, time_ns)."""
    magic, version, frame_type, length, group, port, segment, sequence, time_ns = HEADER.unpack_from(
        data, offset
    )
    if magic != MAGIC:
        raise FrameError(f"bad magic 0x{magic:04x} (expected 0x{MAGIC:04x}): not a relay peer")
    if version != VERSION:
        raise FrameError(f"peer speaks frame version {version}; this relay speaks {VERSION}")
    if frame_type not in _KNOWN_TYPES:
        raise FrameError(f"unknown frame type {frame_type}")
    if length > MAX_PAYLOAD:
        raise FrameError(f"frame length {length} exceeds {MAX_PAYLOAD}")
    if frame_type == _RUN and not (segment > 0 and 0 < length <= segment * MAX_RUN):
        raise FrameError(f"RUN frame of {length} bytes in {segment}-byte datagrams (at most {MAX_RUN})")
    return frame_type, length, group, port, segment, sequence, time_ns


class Decoder:
    """Turns TCP chunks into frames; keeps at most one partial frame between chunks."""

    __slots__ = ("_complete", "_failed", "_pending")

    def __init__(self) -> None:
        self._pending = b""
        self._failed = False
        self._complete = 0

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back (non-zero at EOF means a truncated frame)."""
        return len(self._pending)

    def feed(self, data: bytes) -> Iterator[RawFrame]:
        """Yield every complete frame in the stream so far; raise :class:`FrameError` on garbage.

        Payloads are views into the chunk; use them before the next ``feed``.
        """
        buffer, spans = self.feed_spans(data)
        view = memoryview(buffer)
        for frame_type, group, port, segment, sequence, time_ns, start, stop in spans:
            yield frame_type, group, port, segment, sequence, time_ns, view[start:stop]

    def feed_spans(self, data: bytes) -> tuple[bytes, Iterator[SpanFrame]]:
        """Like :meth:`feed`, with each payload as (start, stop) offsets into the returned buffer."""
        if self._failed:
            raise FrameError("decoder already failed")
        if self._pending:
            data = self._pending + data
            self._pending = b""
        return data, self._spans(data)

    def _spans(self, data: bytes) -> Iterator[SpanFrame]:
        yield from self._frames(data)
        self._pending = data[self._complete :]

    def _frames(self, data: bytes) -> Iterator[SpanFrame]:
        """Every complete frame of ``data``; then :attr:`_complete` is where the rest begins."""
        end = len(data)
        offset = 0
        try:
            while end - offset >= HEADER_SIZE:
                frame_type, length, group, port, segment, sequence, time_ns = parse_header(data, offset)
                start = offset + HEADER_SIZE
                stop = start + length
                if stop > end:
                    break
                yield frame_type, group, port, segment, sequence, time_ns, start, stop
                offset = stop
            check_partial(data, offset)
        except FrameError:
            self._failed = True
            raise
        self._complete = offset


def encode_resume(wanted: dict[int, int], *, known: bool) -> bytes:
    """A RESUME frame: for each stream key (``group << 16 | port``), the next sequence wanted;
    ``known``: the egress has taken this ingress session before (header sequence 1, else 0)."""
    payload = b"".join(
        RESUME_ENTRY.pack(key >> 16, key & 0xFFFF, sequence) for key, sequence in wanted.items()
    )
    return encode(FrameType.RESUME, payload, sequence=int(known))


def decode_resume(known: int, payload: bytes | memoryview) -> tuple[bool, dict[int, int]]:
    """(known, wanted) of a RESUME frame whose header sequence is ``known``."""
    if known not in (0, 1):
        raise FrameError(f"RESUME with sequence {known}: 0 (a fresh start) or 1 (a known session)")
    if len(payload) % RESUME_ENTRY.size:
        raise FrameError(f"RESUME of {len(payload)} bytes, not a multiple of {RESUME_ENTRY.size}")
    wanted: dict[int, int] = {}
    for group, port, sequence in RESUME_ENTRY.iter_unpack(payload):
        if sequence < 1:
            raise FrameError(f"RESUME asks for sequence {sequence}; sequences start at 1")
        wanted[group << 16 | port] = sequence
    if wanted and not known:
        raise FrameError("a fresh RESUME names streams")
    return bool(known), wanted


def check_partial(data: bytes, offset: int) -> None:
    """Raise :class:`FrameError` now if the incomplete frame at ``offset`` cannot be a frame (bad
    magic), rather than after waiting for the rest of it."""
    if len(data) - offset >= 2 and data[offset : offset + 2] != _MAGIC_BYTES:
        parse_header(data[offset:].ljust(HEADER_SIZE, b"\0"))


def group_to_int(address: str) -> int:
    return int.from_bytes(socket.inet_aton(address), "big")


def int_to_group(value: int) -> str:
    return socket.inet_ntoa(value.to_bytes(4, "big"))
