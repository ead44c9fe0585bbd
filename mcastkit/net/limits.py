"""What the Transit Gateway carries, for the relay and the probe alike."""

from __future__ import annotations

#: The TGW drops IP packets over 8500 bytes and never fragments.
TGW_MTU = 8500
#: Largest UDP payload that fits a TGW packet (IPv4 header 20 + UDP header 8).
MAX_DATAGRAM = TGW_MTU - 28
