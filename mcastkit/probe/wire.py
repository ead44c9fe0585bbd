"""The probe datagram: magic, stream id, sequence number, send time; padded to the requested size."""

from __future__ import annotations

import struct

MAGIC = b"MKP1"
#: magic, stream id (random per sender run), sequence number, send time in ns.
HEADER = struct.Struct("!4sIQQ")
HEADER_SIZE = HEADER.size
#: Larger datagrams are dropped by the Transit Gateway (MTU 8500, no fragmentation).
MAX_SIZE = 8500
