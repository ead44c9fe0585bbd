"""Log lines a flood cannot multiply: one line per reason per interval, with the count since."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

#: At most one line per reason in this many seconds.
EVERY_S = 10.0


class Throttle:
    """Logs the first event of a reason, then at most one line per ``every_s`` with how many
    events of that reason the interval held (the counters in ``/metrics`` keep every one)."""

    def __init__(
        self, log: logging.Logger, every_s: float = EVERY_S, clock: Callable[[], float] = time.monotonic
    ):
        self._log = log
        self._every_s = every_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def warning(self, reason: str, message: str, *args: object) -> None:
        now = self._clock()
        held = self._held.get(reason, 0)
        if now - self._last.get(reason, -self._every_s) < self._every_s:
            self._held[reason] = held + 1
            return
        self._last[reason] = now
        self._held[reason] = 0
        suffix = f" (and {held} more like it since the last line)" if held else ""
        self._log.warning(message + suffix, *args)
