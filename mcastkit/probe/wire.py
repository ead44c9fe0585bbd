"""The probe datagram: magic, stream id, sequence number, send time; padded to the requested size."""

from __future__ import annotations

import struct
from typing import NamedTuple

from mcastkit.net.limits import MAX_DATAGRAM

MAGIC = b"MKP1"
#: magic, stream id (random per sender run), sequence number, send time in ns.
HEADER = struct.Struct("!4sIQQ")
HEADER_SIZE = HEADER.size
#: Larger datagrams are dropped by the Transit Gateway (MTU 8500, no fragmentation).
MAX_SIZE = MAX_DATAGRAM


class SizeRange(NamedTuple):
    """The payload sizes of a probe stream: one size, or a range each datagram's size is drawn from."""

    low: int
    high: int

    def __str__(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"


DEFAULT_SIZE = SizeRange(64, 64)
