"""How much memory a probe process needs, for the ECS tasks and the EKS pods alike."""

from __future__ import annotations

import math
from typing import Final

#: A probe process besides its latency samples.
MEMORY_MIB: Final = 128
#: One latency sample a receiver keeps per datagram of a report interval.
LATENCY_SAMPLE_BYTES: Final = 8


def receiver_memory_mib(rate: int, report_seconds: float) -> int:
    """A receiver's memory: the process, and twice one interval's samples at ``rate``."""
    return MEMORY_MIB + math.ceil(2 * rate * report_seconds * LATENCY_SAMPLE_BYTES / 2**20)
