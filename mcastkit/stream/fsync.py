"""The journal's fsync policy: a leaf module, shared by the sequencer and the config core."""

from __future__ import annotations

from enum import StrEnum


class Fsync(StrEnum):
    """When appended messages reach the disk itself, not just the page cache.

    ``none``: the kernel decides; a process crash loses nothing, a host crash or power loss
    can lose the last seconds. ``interval``: ``fdatasync`` every 0.1 s from a thread; a host
    crash loses at most that much. ``always``: ``fdatasync`` before each batch is published;
    nothing published is ever lost, at the disk's latency per batch. After a host crash with
    ``none`` or ``interval`` the sequence continues after what survived, so numbers that
    were published and lost are given again to new messages: receivers must then start over.
    """

    NONE = "none"
    INTERVAL = "interval"
    ALWAYS = "always"
