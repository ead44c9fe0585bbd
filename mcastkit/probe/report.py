"""The report a probe receiver prints (``probe recv --json``), and the one rule for ``ok``.

``probe recv`` prints one JSON line per finite stream; the lab and the relay benchmark run
receivers in other processes (other network namespaces) and read that line back. One frozen
type on both sides keeps the keys in one place, and :func:`within_budget` is the one rule that
decides whether a stream was delivered well enough, wherever it is judged. Standard library
only: the tools image that runs the probe has no CDK.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from mcastkit.probe.receiver import ReceiveResult
from mcastkit.probe.stats import LossCounts, latency_summary

_KINDS = {int: "a whole number", float: "a number", str: "a string", dict: "an object"}


class ReportError(ValueError):
    """A line is not the report ``probe recv --json`` prints; the message says what is wrong."""


def within_budget(heard: int, loss: float, max_loss: float) -> bool:
    """The one rule for ``ok``: something of the stream arrived, and the share lost is at most ``max_loss``.

    Nothing heard is never ok, whatever the budget: a receiver on the wrong group or interface
    hears nothing, and ``--max-loss 1`` must not let it pass.
    """
    return heard > 0 and loss <= max_loss


@dataclass(frozen=True)
class Latency:
    """Latency percentiles in microseconds (nearest rank, 0.1 µs); ``None`` without samples."""

    p50: float | None = None
    p99: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class ProbeReport(LossCounts):
    """What one receiver saw of a finite stream whose sequence numbers run from 0 to ``expected - 1``.

    ``lost``, ``loss`` and ``ok`` are derived, never stored, so a report cannot contradict
    itself; the JSON carries them for people and scripts, and :meth:`from_json` recomputes them.
    """

    group: str
    interface: str
    #: The stream counted (the first one heard, or ``--stream-id``); ``None``: nothing heard.
    stream_id: int | None
    expected: int
    #: Every probe datagram of the stream, duplicates and unexpected ones included.
    received: int
    unique: int
    duplicates: int
    reordered: int
    #: Sequence numbers beyond ``expected`` (a longer sender run).
    unexpected: int
    latency_us: Latency
    #: Datagrams that were not probe datagrams, or belonged to another stream.
    foreign: int
    seconds: float
    #: ``count``, ``timeout`` or ``idle``.
    stopped_by: str
    #: The budget the receiver judged by (``--max-loss``); :meth:`ok` can judge by another.
    max_loss: float

    def ok(self, max_loss: float | None = None) -> bool:
        """:func:`within_budget` by ``max_loss``, by default the receiver's own ``--max-loss``."""
        return within_budget(self.unique, self.loss, self.max_loss if max_loss is None else max_loss)

    @classmethod
    def of(cls, result: ReceiveResult, *, group: str, interface: str, max_loss: float) -> ProbeReport:
        """The report of a finished :func:`~mcastkit.probe.receiver.receive_stream`."""
        stats = result.stats
        return cls(
            group=group,
            interface=interface,
            stream_id=result.stream_id,
            expected=stats.expected,
            received=stats.received,
            unique=stats.unique,
            duplicates=stats.duplicates,
            reordered=stats.reordered,
            unexpected=stats.unexpected,
            latency_us=Latency(**latency_summary(stats.latencies_ns)),
            foreign=result.foreign,
            seconds=round(result.seconds, 3),
            stopped_by=result.stopped_by,
            max_loss=max_loss,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, keys in the order ``probe recv --json`` has always printed them."""
        return {
            "group": self.group,
            "interface": self.interface,
            "stream_id": self.stream_id,
            "expected": self.expected,
            "received": self.received,
            "unique": self.unique,
            "lost": self.lost,
            "loss": round(self.loss, 6),
            "duplicates": self.duplicates,
            "reordered": self.reordered,
            "unexpected": self.unexpected,
            "latency_us": asdict(self.latency_us),
            "foreign": self.foreign,
            "seconds": self.seconds,
            "stopped_by": self.stopped_by,
            "max_loss": self.max_loss,
            "ok": self.ok(),
        }

    def to_json(self) -> str:
        """One line, as ``probe recv --json`` prints it."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, line: str) -> ProbeReport:
        """The report in ``line``; :class:`ReportError` saying what is wrong, and showing the line, if not."""
        try:
            return cls._from_dict(json.loads(line))
        except json.JSONDecodeError as err:
            problem = f"{err.msg} at column {err.colno}"
        except ReportError as err:
            problem = str(err)
        raise ReportError(f"not a probe report ({problem}): {_excerpt(line)}")

    @classmethod
    def _from_dict(cls, data: object) -> ProbeReport:
        if not isinstance(data, dict):
            raise ReportError("not a JSON object")
        return cls(
            group=_get(data, "group", str),
            interface=_get(data, "interface", str),
            stream_id=_get(data, "stream_id", int, nullable=True),
            expected=_get(data, "expected", int),
            received=_get(data, "received", int),
            unique=_get(data, "unique", int),
            duplicates=_get(data, "duplicates", int),
            reordered=_get(data, "reordered", int),
            unexpected=_get(data, "unexpected", int),
            latency_us=_latency(_get(data, "latency_us", dict)),
            foreign=_get(data, "foreign", int),
            seconds=_get(data, "seconds", float),
            stopped_by=_get(data, "stopped_by", str),
            max_loss=_get(data, "max_loss", float),
        )


def _get(data: dict[str, Any], key: str, kind: type, *, nullable: bool = False, where: str = "") -> Any:
    """``data[key]`` if it is of ``kind`` (a whole number is a number too; a boolean is neither)."""
    value = data.get(key)
    if value is None and nullable:
        return None
    if key not in data:
        raise ReportError(f"no {where + key!r}")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ReportError(f"{where + key!r} is {value!r}, not {_KINDS[kind]}")
    return value


def _latency(data: dict[str, Any]) -> Latency:
    """``latency_us``: each percentile a number, or null when there was no sample."""
    keys = ("p50", "p99", "max")
    return Latency(**{key: _get(data, key, float, nullable=True, where="latency_us.") for key in keys})


def _excerpt(line: str, limit: int = 80) -> str:
    return repr(line if len(line) <= limit else line[:limit] + "...")
