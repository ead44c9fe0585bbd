"""The bus logger's human-readable journal: one line a message, in sequence order.

    <sequence> <length> <text or hex>

A message that is printable ASCII is written as it is; any other is written in hex, whole,
so the log holds every byte of the stream. ``mcastkit stream log`` writes it from the
group; ``mcastkit stream show`` from a journal directory.
"""

from __future__ import annotations

import re

#: A byte that is not printable ASCII (space to tilde): found early in binary messages, so the
#: search stops there.
_UNPRINTABLE = re.compile(rb"[^\x20-\x7e]")


def lines(first: int, messages: list[bytes]) -> str:
    """The lines of ``messages`` numbered from ``first``."""
    out = []
    unprintable = _UNPRINTABLE.search
    for number, message in enumerate(messages, first):
        text = message.hex() if unprintable(message) else message.decode("ascii")
        out.append(f"{number} {len(message)} {text}\n")
    return "".join(out)
