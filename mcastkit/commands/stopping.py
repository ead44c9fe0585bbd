"""Stopping a long-running command cleanly on SIGTERM (docker stop, ECS) or SIGINT (Ctrl-C)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def until_stopped() -> Iterator[Callable[[], bool]]:
    """A ``keep_running`` that turns false on SIGTERM (docker stop, ECS) or SIGINT (Ctrl-C).

    Handlers can only be set from the main thread; elsewhere (tests) the signals keep theirs.
    """
    running = [True]

    def stop(_signum: int, _frame: object) -> None:
        running[0] = False

    signals = (signal.SIGTERM, signal.SIGINT)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = [signal.signal(signum, stop) for signum in signals] if in_main_thread else []
    try:
        yield lambda: running[0]
    finally:
        for signum, handler in zip(signals, previous, strict=False):
            signal.signal(signum, handler)
