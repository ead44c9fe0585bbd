"""MoldUDP64 (Nasdaq, version 1.00): the downstream packet and the re-request packet.

A downstream packet is a 20-byte header (10-byte session, 8-byte sequence number of the
first message, 2-byte message count, all big-endian) and then each message as a 2-byte
length and its bytes. Count 0 is a heartbeat whose sequence number is the next one the
sender will use; count 0xFFFF marks the end of the session. A request packet is the same
20-byte header asking for ``count`` messages from ``sequence``; the answer is unicast
downstream packets to the address the request came from.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from mcastkit.errors import BadInput

SESSION_BYTES = 10
HEADER = struct.Struct("!10sQH")
HEADER_SIZE = HEADER.size  # 20
LENGTH = struct.Struct("!H")
END_OF_SESSION = 0xFFFF
#: The largest count a packet can carry (0xFFFF is reserved for the end of session).
MAX_COUNT = 0xFFFE


class MoldError(ValueError):
    """A datagram that is not a well-formed MoldUDP64 packet."""


def session_field(name: str) -> bytes:
    """``name`` as MoldUDP64's 10-byte session field: printable ASCII, padded with spaces."""
    if not name or len(name) > SESSION_BYTES or not name.isascii() or not name.isprintable() or " " in name:
        raise BadInput(
            f"session {name!r}: use 1-{SESSION_BYTES} printable ASCII characters without spaces "
            "(MoldUDP64 and SoupBinTCP carry it in a 10-byte field)"
        )
    return name.encode("ascii").ljust(SESSION_BYTES)


def session_name(field: bytes) -> str:
    return field.decode("ascii", "replace").strip()


@dataclass(frozen=True)
class Packet:
    session: bytes
    sequence: int
    #: The messages' bytes; empty for a heartbeat or the end of session.
    messages: list[bytes]
    end_of_session: bool = False

    @property
    def next_sequence(self) -> int:
        return self.sequence + len(self.messages)


def encode(session: bytes, sequence: int, messages: list[bytes]) -> bytes:
    """A downstream packet carrying ``messages`` from ``sequence`` (none: a heartbeat)."""
    if len(messages) > MAX_COUNT:
        raise ValueError(f"{len(messages)} messages: a packet carries at most {MAX_COUNT}")
    parts = [HEADER.pack(session, sequence, len(messages))]
    pack = LENGTH.pack
    for message in messages:
        parts.append(pack(len(message)))
        parts.append(message)
    return b"".join(parts)


def heartbeat(session: bytes, next_sequence: int) -> bytes:
    return HEADER.pack(session, next_sequence, 0)


def end_of_session(session: bytes, next_sequence: int) -> bytes:
    return HEADER.pack(session, next_sequence, END_OF_SESSION)


def decode(data: bytes | memoryview) -> Packet:
    """The packet in ``data``; :class:`MoldError` if it is cut short or has bytes left over."""
    if len(data) < HEADER_SIZE:
        raise MoldError(f"{len(data)} bytes: shorter than the {HEADER_SIZE}-byte header")
    session, sequence, count = HEADER.unpack_from(data)
    if count == END_OF_SESSION:
        return Packet(session, sequence, [], end_of_session=True)
    messages: list[bytes] = []
    position, end = HEADER_SIZE, len(data)
    view = memoryview(data)
    for _ in range(count):
        if position + 2 > end:
            raise MoldError(f"cut short: {count} messages announced, {len(messages)} present")
        (length,) = LENGTH.unpack_from(view, position)
        position += 2
        if position + length > end:
            raise MoldError(f"cut short: message {sequence + len(messages)} needs {length} bytes")
        messages.append(bytes(view[position : position + length]))
        position += length
    if position != end:
        raise MoldError(f"{end - position} bytes after the {count} announced messages")
    return Packet(session, sequence, messages)


def encode_request(session: bytes, sequence: int, count: int) -> bytes:
    """A re-request for ``count`` messages from ``sequence``."""
    return HEADER.pack(session, sequence, count)


def decode_request(data: bytes) -> tuple[bytes, int, int]:
    """(session, sequence, count) of a re-request; :class:`MoldError` if it is not 20 bytes."""
    if len(data) != HEADER_SIZE:
        raise MoldError(f"{len(data)} bytes: a request is {HEADER_SIZE}")
    session, sequence, count = HEADER.unpack(data)
    return session, sequence, count


def packets(session: bytes, sequence: int, messages: list[bytes], limit: int) -> list[bytes]:
    """``messages`` from ``sequence`` packed into as few packets of at most ``limit`` bytes as
    their order allows. A message too big for one packet raises ``ValueError``."""
    out: list[bytes] = []
    start, size, first = 0, HEADER_SIZE, sequence
    for index, message in enumerate(messages):
        need = 2 + len(message)
        if HEADER_SIZE + need > limit:
            raise ValueError(f"a {len(message)}-byte message does not fit a {limit}-byte packet")
        if size + need > limit or index - start == MAX_COUNT:
            out.append(encode(session, first, messages[start:index]))
            first += index - start
            start, size = index, HEADER_SIZE
        size += need
    if start < len(messages):
        out.append(encode(session, first, messages[start:]))
    return out


def max_message(limit: int) -> int:
    """The largest message a packet of ``limit`` bytes can carry."""
    return limit - HEADER_SIZE - 2
