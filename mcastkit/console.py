"""The streams a command writes to; tests pass their own."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class Console:
    """Standard output for results, standard error for messages and progress."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)

    @property
    def interactive(self) -> bool:
        return self.out.isatty()

    def error(self, message: str) -> None:
        print(f"mcastkit: error: {message}", file=self.err)
