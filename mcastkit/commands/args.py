"""Argument types shared by the relay, probe and lab commands.

Each returns a parser for ``argparse``'s ``type=``; a bad value becomes an ``ArgumentTypeError``,
which argparse reports as ``argument --flag: <message>`` with exit status 2 (bad input).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from mcastkit.monitoring import emf
from mcastkit.net.addresses import AddressError, GroupPort, parse_group
from mcastkit.probe.wire import HEADER_SIZE, MAX_SIZE, SizeRange
from mcastkit.stream.fsync import Fsync


def _limits(low: float, high: float | None) -> str:
    return f"from {low} to {high}" if high is not None else f"at least {low}"


def bounded_int(low: int, high: int | None = None) -> Callable[[str], int]:
    """A whole number from ``low`` to ``high`` (no upper limit when ``high`` is None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: not a whole number") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text!r}: must be {_limits(low, high)}")
        return value

    return parse


def bounded_float(
    low: float, high: float | None = None, *, exclusive: bool = False
) -> Callable[[str], float]:
    """A finite number from ``low`` (above it, with ``exclusive``) to ``high``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: not a number") from None
        too_low = value <= low if exclusive else not value >= low  # `not >=` also catches NaN
        if too_low or not math.isfinite(value) or (high is not None and value > high):
            lowest = f"more than {low}" if exclusive else f"at least {low}"
            limits = f"{lowest} and at most {high}" if high is not None else lowest
            raise argparse.ArgumentTypeError(f"{text!r}: must be {limits}")
        return value

    return parse


def size_range(text: str) -> SizeRange:
    """Probe payload bytes: ``N``, or ``MIN-MAX`` for a size drawn per datagram."""
    low_text, dash, high_text = text.partition("-")
    if not low_text or (dash and not high_text):
        raise argparse.ArgumentTypeError(f"{text!r}: expected BYTES or MIN-MAX")
    bounds = bounded_int(HEADER_SIZE, MAX_SIZE)
    low = bounds(low_text)
    high = bounds(high_text) if dash else low
    if high < low:
        raise argparse.ArgumentTypeError(f"{text!r}: write the smaller size first (MIN-MAX)")
    return SizeRange(low, high)


def group_port(text: str) -> GroupPort:
    """``GROUP:PORT`` with an IPv4 multicast data group."""
    try:
        return parse_group(text, flag="")
    except AddressError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_fsync(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``--fsync {none,interval,always}``: when the sequencer's journal reaches the disk."""
    parser.add_argument("--fsync", type=Fsync, choices=list(Fsync), default=Fsync.INTERVAL, help=help_text)


def add_emf(parser: argparse.ArgumentParser, *, every: bool = True) -> None:
    """``--emf SERVICE`` (and ``--emf-every``): CloudWatch metric lines on standard output."""
    parser.add_argument(
        "--emf",
        metavar="SERVICE",
        help="print a CloudWatch embedded-metric line per interval on standard output, with "
        "dimension Service=SERVICE (in ECS the awslogs driver publishes it; default: off)",
    )
    if every:
        parser.add_argument(
            "--emf-every",
            type=bounded_float(1.0),
            default=emf.EVERY_SECONDS,
            metavar="SECONDS",
            help=f"--emf: seconds per metric line (default {emf.EVERY_SECONDS:g})",
        )
