"""Exit statuses shared by every mcastkit command."""

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    #: Something is wrong with what was found (loss over budget, an intruder, a failed check).
    FAILURE = 1
    #: The input is wrong: bad config, bad arguments, unknown customer or region.
    BAD_INPUT = 2
    #: The environment stopped us: no credentials, access denied, no root, a timeout.
    ENVIRONMENT = 3
    INTERRUPTED = 130
