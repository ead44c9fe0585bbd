"""CloudWatch metrics without an agent: Embedded Metric Format lines on standard output.

A container's standard output already goes to CloudWatch Logs through the ``awslogs`` log
driver (``PutLogEvents``). CloudWatch Logs extracts metrics from any event that is an EMF
document; the ``x-amzn-logs-format: json/emf`` header is optional (CloudWatch user guide,
"Using the PutLogEvents API to send manually-created embedded metric format logs"). So the
relay, the probe receiver and the sequencer print one such line per interval and need no agent,
no endpoint and no ``cloudwatch:PutMetricData`` permission.

This module is the one catalogue of what is published: the namespace, the dimension, and each
component's metric names and units. The emitters and the alarms and dashboard both read it.
Standard library only.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO

#: Every mcastkit metric is in this namespace, with the one dimension :data:`DIMENSION`.
NAMESPACE = "mcastkit"
#: The dimension naming the publisher: ``{project}-relay``, ``{project}-probe-{group}``,
#: ``{project}-stream-{name}`` (see :func:`service_name`).
DIMENSION = "Service"
#: Seconds between metric lines in AWS (the alarms' period: one datapoint a minute).
EVERY_SECONDS = 60.0


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    help: str


class Relay:
    """Published by ``relay ingress|egress --emf``; counts are per interval, ``Peers`` is a gauge."""

    PEERS = Metric("Peers", "Count", "Authenticated relay links up at the end of the interval")
    DATAGRAMS_IN = Metric("DatagramsIn", "Count", "Datagrams received (egress: from the relay link)")
    DATAGRAMS_OUT = Metric(
        "DatagramsOut", "Count", "Datagrams sent (egress: emitted, a copy per receiver with --unicast)"
    )
    GAPS = Metric("Gaps", "Count", "Sequence numbers never received (egress): datagrams lost on the way")
    UNRECOVERABLE = Metric("Unrecoverable", "Count", "Ingress: datagrams a resuming peer asked for, gone")
    DROPS = Metric("Drops", "Count", "Datagrams dropped instead of forwarded (oversize, send errors, ...)")
    DISCONNECTS = Metric("Disconnects", "Count", "Relay links closed")
    AUTH_FAILURES = Metric("AuthFailures", "Count", "Peers refused by the handshake")
    ALL = (PEERS, DATAGRAMS_IN, DATAGRAMS_OUT, GAPS, UNRECOVERABLE, DROPS, DISCONNECTS, AUTH_FAILURES)


class Probe:
    """Published by ``probe recv --count 0 --emf``, once per report interval, per receiver."""

    RECEIVED = Metric("Received", "Count", "Probe datagrams received")
    LOST = Metric("Lost", "Count", "Probe sequence numbers skipped and not arrived")
    LOSS = Metric("LossPercent", "Percent", "Lost over expected")
    LATENCY_P99 = Metric("LatencyP99", "Microseconds", "99th percentile of send-to-receive latency")
    FOREIGN = Metric("Foreign", "Count", "Datagrams without the probe's header (another sender)")
    SENDER_RESTARTS = Metric("SenderRestarts", "Count", "Times the probe sender started a new stream")
    ALL = (RECEIVED, LOST, LOSS, LATENCY_P99, FOREIGN, SENDER_RESTARTS)


class Sequencer:
    """Published by ``stream sequencer --emf``."""

    MESSAGES = Metric("Messages", "Count", "Messages sequenced, journaled and published")
    PACKETS = Metric("Packets", "Count", "MoldUDP64 packets published (heartbeats included)")
    SEND_ERRORS = Metric("SendErrors", "Count", "Packets the kernel refused to send")
    TOO_BIG = Metric("TooBig", "Count", "Input datagrams too long for a packet: not sequenced")
    RETRANSMITTED = Metric("Retransmitted", "Count", "Messages sent again on request")
    ALL = (MESSAGES, PACKETS, SEND_ERRORS, TOO_BIG, RETRANSMITTED)


def service_name(project: str, component: str, name: str | None = None) -> str:
    """The :data:`DIMENSION` value of one publisher of a project."""
    return "-".join(part for part in (project, component, name) if part)


def document(
    service: str, values: Mapping[Metric, float], *, timestamp_ms: int | None = None
) -> dict[str, object]:
    """One EMF document: ``values`` under :data:`NAMESPACE` with ``Service=service``."""
    if timestamp_ms is None:
        timestamp_ms = int(time.time() * 1000)
    doc: dict[str, object] = {
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [[DIMENSION]],
                    "Metrics": [{"Name": m.name, "Unit": m.unit} for m in values],
                }
            ],
        },
        DIMENSION: service,
    }
    for metric, value in values.items():
        doc[metric.name] = value
    return doc


def line(service: str, values: Mapping[Metric, float], *, timestamp_ms: int | None = None) -> str:
    """:func:`document` as one line of JSON (one log event)."""
    return json.dumps(document(service, values, timestamp_ms=timestamp_ms), separators=(",", ":"))


class Deltas:
    """Turns running totals into per-interval counts (a total that went down starts over)."""

    def __init__(self) -> None:
        self._last: dict[Metric, int] = {}

    def since_last(self, totals: Mapping[Metric, int]) -> dict[Metric, int]:
        out = {}
        for metric, total in totals.items():
            before = self._last.get(metric, 0)
            out[metric] = total - before if total >= before else total
            self._last[metric] = total
        return out


class Publisher:
    """Prints a metric line every ``every`` seconds from a thread, and once more on :meth:`close`.

    ``sample`` returns the values to publish (it runs on the publisher's thread: it must read,
    not change, what the data path counts).
    """

    def __init__(
        self, service: str, sample: Callable[[], Mapping[Metric, float]], out: IO[str], *, every: float
    ) -> None:
        self.service, self._sample, self._out, self._every = service, sample, out, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="emf", daemon=True)
        self._lock = threading.Lock()

    def start(self) -> Publisher:
        self._thread.start()
        return self

    def publish(self) -> None:
        with self._lock:
            self._out.write(line(self.service, self._sample()) + "\n")
            self._out.flush()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.publish()

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.publish()
