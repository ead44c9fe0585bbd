"""Relay counters, exported in Prometheus text on ``/metrics``, and ``/healthz``.

The hot path bumps plain integers (a prometheus ``Counter.inc`` per datagram would cost more
than the forwarding); a custom collector reads them when scraped.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from mcastkit import __version__
from mcastkit.monitoring import emf

#: /healthz fails when the event loop has not ticked for this long (it ticks every second).
STALL_SECONDS = 5.0


@dataclass
class GroupStats:
    """Per (group, port) counters; ``in`` and ``out`` are from this relay's point of view."""

    datagrams_in: int = 0
    #: of those, datagrams of coalesced bursts (ingress: UDP GRO; egress: RUN frames)
    datagrams_in_runs: int = 0
    bytes_in: int = 0
    #: ingress: copies owed to peers (one per live peer on arrival; one when there was none)
    datagrams_due: int = 0
    datagrams_out: int = 0
    bytes_out: int = 0
    gaps: int = 0
    duplicates: int = 0
    #: ingress: datagrams written again, from the replay window, to peers that resumed
    replayed: int = 0
    #: ingress: datagrams resuming peers asked for that the replay window no longer held
    unrecoverable: int = 0


@dataclass
class UnicastStats:
    """Per (group, unicast target) counters of an egress with ``--unicast``: each datagram of the
    group is owed once to each of its targets, and ends in ``datagrams_out`` or ``drops``."""

    datagrams_out: int = 0
    bytes_out: int = 0
    #: copies not sent, by reason (``unicast_refused``: the target's host answered port
    #: unreachable; ``send_error``: any other refusal of the kernel)
    drops: Counter[str] = field(default_factory=Counter)


@dataclass
class RelayStats:
    #: ``ingress``, ``egress``, or ``downstream``: what an egress with ``--serve`` serves the
    #: egresses below it (counted as an ingress counts)
    role: str
    groups: dict[str, GroupStats] = field(default_factory=dict)
    #: datagrams not forwarded, by reason (oversize, send_error, not_multicast, ...)
    drops: Counter[str] = field(default_factory=Counter)
    #: links closed, by reason (slow_peer, heartbeat_timeout, protocol_error, closed, ...)
    disconnects: Counter[str] = field(default_factory=Counter)
    peers: int = 0
    #: ingress: datagram copies handed to a peer's transport, not yet seen on its socket
    queued: int = 0
    #: egress: wall-clock age of the newest datagram emitted (needs synchronized clocks)
    transit_ns: int | None = None
    reconnects: int = 0
    #: links that resumed a stream where an earlier link of the same sessions stopped
    resumes: int = 0
    auth_failures: int = 0
    #: egress: per (emitted group, ``HOST:PORT``), the copies sent to each ``--unicast`` target
    unicast: dict[tuple[str, str], UnicastStats] = field(default_factory=dict)
    #: egress with ``--serve``: the counters of what it serves the egresses below it
    downstream: RelayStats | None = None
    started: float = field(default_factory=time.monotonic)
    last_tick: float = field(default_factory=time.monotonic)

    @property
    def serves(self) -> bool:
        """Whether these are the counters of a side that serves egress peers (queues, replay)."""
        return self.role in ("ingress", "downstream")

    def group(self, label: str) -> GroupStats:
        stats = self.groups.get(label)
        if stats is None:
            stats = self.groups[label] = GroupStats()
        return stats

    def target(self, group: str, target: str) -> UnicastStats:
        stats = self.unicast.get((group, target))
        if stats is None:
            stats = self.unicast[(group, target)] = UnicastStats()
        return stats

    def healthy(self) -> bool:
        return time.monotonic() - self.last_tick < STALL_SECONDS

    def health(self) -> dict[str, Any]:
        health = {
            "status": "ok" if self.healthy() else "stalled",
            "role": self.role,
            "peers": self.peers,
            "uptime_seconds": round(time.monotonic() - self.started, 1),
        }
        if self.downstream is not None:
            health["downstream_peers"] = self.downstream.peers
        return health


_GROUP_COUNTERS = (
    ("datagrams_in", "Datagrams received (ingress: from multicast; egress: from the relay link)"),
    (
        "datagrams_in_runs",
        "Of datagrams_in, those of bursts that crossed as one (ingress: coalesced by the host, UDP GRO; "
        "egress: RUN frames)",
    ),
    ("bytes_in", "Payload bytes received"),
    (
        "datagrams_due",
        "Ingress: datagram copies owed to peers, one per live peer on arrival (one if none was)",
    ),
    (
        "datagrams_out",
        "Datagrams sent (ingress: frames written to a peer's socket, summed over peers; "
        "egress: multicast emitted, or a copy per --unicast target)",
    ),
    ("bytes_out", "Payload bytes sent"),
    ("gaps", "Sequence numbers never received (egress)"),
    ("duplicates", "Repeated or old sequence numbers, not emitted (egress)"),
    ("replayed", "Ingress: datagrams written again from the replay window to peers that resumed"),
    ("unrecoverable", "Ingress: datagrams resuming peers asked for that the replay window no longer held"),
)
#: Counters only a side that serves egress peers keeps (the ingress, an egress's ``--serve``).
_INGRESS_ONLY = frozenset({"datagrams_due", "replayed", "unrecoverable"})


class RelayCollector(Collector):
    def __init__(self, stats: RelayStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Any]:
        stats = self.stats
        info = InfoMetricFamily("mcastkit_relay", "Relay role and version")
        info.add_metric([], {"role": stats.role, "version": __version__})
        yield info
        yield from _families(stats, "mcastkit_relay", "")
        if stats.unicast:
            yield from _unicast_families(stats)
        if stats.downstream is not None:
            yield from _families(
                stats.downstream, "mcastkit_relay_downstream", "Served to downstream egresses: "
            )


def _families(stats: RelayStats, prefix: str, about: str) -> Iterator[Any]:
    """The families of one side's counters, named ``prefix_...``, each help text led by ``about``."""
    groups = list(stats.groups.items())
    for name, help_text in _GROUP_COUNTERS:
        if name in _INGRESS_ONLY and not stats.serves:
            continue
        family = CounterMetricFamily(f"{prefix}_{name}", about + help_text, labels=["group"])
        for label, group in groups:
            family.add_metric([label], getattr(group, name))
        yield family
    drops = CounterMetricFamily(
        f"{prefix}_drops", about + "Datagrams dropped instead of forwarded", labels=["reason"]
    )
    for reason, count in sorted(stats.drops.items()):
        drops.add_metric([reason], count)
    yield drops
    disconnects = CounterMetricFamily(
        f"{prefix}_disconnects", about + "Relay links closed, by reason", labels=["reason"]
    )
    for reason, count in sorted(stats.disconnects.items()):
        disconnects.add_metric([reason], count)
    yield disconnects
    yield GaugeMetricFamily(f"{prefix}_peers", about + "Authenticated peers connected", value=stats.peers)
    if stats.serves:
        yield GaugeMetricFamily(
            f"{prefix}_queued_datagrams",
            about + "Datagram copies in peers' send queues, not yet written to their sockets",
            value=stats.queued,
        )
    if stats.transit_ns is not None:
        yield GaugeMetricFamily(
            f"{prefix}_transit_seconds",
            about
            + "Ingress receive to egress emit of the latest datagram (meaningful with synchronized clocks)",
            value=stats.transit_ns / 1e9,
        )
    yield CounterMetricFamily(
        f"{prefix}_reconnects", about + "Links re-established after a failure", value=stats.reconnects
    )
    yield CounterMetricFamily(
        f"{prefix}_resumes",
        about + "Links that took up the stream where an earlier link stopped (ingress: replays begun; "
        "egress: resumes asked for)",
        value=stats.resumes,
    )
    yield CounterMetricFamily(
        f"{prefix}_auth_failures", about + "Peers refused by the handshake", value=stats.auth_failures
    )


def _unicast_families(stats: RelayStats) -> Iterator[Any]:
    """Per ``--unicast`` target of each group: copies sent, their bytes, and copies dropped by reason."""
    targets = list(stats.unicast.items())
    datagrams = CounterMetricFamily(
        "mcastkit_relay_unicast_datagrams_out",
        "Egress: datagrams of the group sent as unicast to the target (--unicast)",
        labels=["group", "target"],
    )
    sent = CounterMetricFamily(
        "mcastkit_relay_unicast_bytes_out",
        "Egress: payload bytes sent to the target",
        labels=["group", "target"],
    )
    drops = CounterMetricFamily(
        "mcastkit_relay_unicast_drops",
        "Egress: datagrams of the group not sent to the target, by reason",
        labels=["group", "target", "reason"],
    )
    for (group, target), counts in targets:
        datagrams.add_metric([group, target], counts.datagrams_out)
        sent.add_metric([group, target], counts.bytes_out)
        for reason, count in sorted(counts.drops.items()):
            drops.add_metric([group, target, reason], count)
    yield from (datagrams, sent, drops)


def emf_sampler(stats: RelayStats) -> Callable[[], dict[emf.Metric, float]]:
    """What ``--emf`` publishes each interval: counts since the last call, and the links up
    (none while the event loop is stalled: the publisher's thread would report a frozen relay).
    An egress's unicast copies count in ``DatagramsOut`` and their refusals in ``Drops``, as in
    ``/metrics``; what it serves below (``--serve``) is in ``/metrics`` only.

    Runs on the publisher's thread: ``list()`` and ``sum()`` over the counters are single C
    calls, so the data path adding a group or a reason meanwhile cannot break them.
    """
    deltas = emf.Deltas()
    m = emf.Relay

    def sample() -> dict[emf.Metric, float]:
        groups = list(stats.groups.values())
        totals = {
            m.DATAGRAMS_IN: sum(g.datagrams_in for g in groups),
            m.DATAGRAMS_OUT: sum(g.datagrams_out for g in groups),
            m.GAPS: sum(g.gaps for g in groups),
            m.DROPS: sum(list(stats.drops.values())),
            m.DISCONNECTS: sum(list(stats.disconnects.values())),
            m.AUTH_FAILURES: stats.auth_failures,
        }
        if stats.serves:
            totals[m.UNRECOVERABLE] = sum(g.unrecoverable for g in groups)
        # A stalled event loop still has peers on paper: report it as no link.
        return {m.PEERS: stats.peers if stats.healthy() else 0, **deltas.since_last(totals)}

    return sample


def render(stats: RelayStats) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RelayCollector(stats))
    return generate_latest(registry)


#: Scrapes served at once; a connection past this is closed unanswered. A scraper and a health
#: check need two; idle half-requests from strangers must not hold a thread each.
MAX_CONNECTIONS = 8
#: A request must arrive whole, and the reply leave, within this many seconds.
REQUEST_TIMEOUT_S = 5.0


class _BoundedServer(ThreadingHTTPServer):
    """A threading HTTP server with at most ``MAX_CONNECTIONS`` requests in flight."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.refused = 0

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.refused += 1
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class MetricsServer:
    """``/metrics`` (Prometheus text) and ``/healthz`` (JSON; 503 when the loop stalls) on a thread,
    with at most ``MAX_CONNECTIONS`` requests at once, each given ``REQUEST_TIMEOUT_S``."""

    def __init__(self, stats: RelayStats, host: str, port: int) -> None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(RelayCollector(stats))

        class Handler(BaseHTTPRequestHandler):
            timeout = REQUEST_TIMEOUT_S  # socket timeout: a slow or idle client is dropped

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._reply(200, CONTENT_TYPE_LATEST, generate_latest(registry))
                elif path == "/healthz":
                    body = json.dumps(stats.health()).encode() + b"\n"
                    self._reply(200 if stats.healthy() else 503, "application/json", body)
                else:
                    self._reply(404, "text/plain", b"not found: try /metrics or /healthz\n")

            def _reply(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # scrapes every few seconds would drown the relay's own log

        self._server = _BoundedServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
