"""The relay's /metrics server holds a bounded number of connections, each for a bounded time."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest

from mcastkit.relay import metrics
from mcastkit.relay.metrics import MetricsServer, RelayStats


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[MetricsServer]:
    # Long enough that no held connection times out while the test counts, on a busy machine too.
    monkeypatch.setattr(metrics, "REQUEST_TIMEOUT_S", 60.0)
    running = MetricsServer(RelayStats("egress"), "127.0.0.1", 0)
    running.start()
    yield running
    running.close()


def _half_requests(server: MetricsServer, count: int) -> list[socket.socket]:
    connections = []
    for _ in range(count):
        connection = socket.create_connection(("127.0.0.1", server.port), timeout=2)
        connection.sendall(b"GET /metr")  # half a request, never finished
        connections.append(connection)
    return connections


def test_idle_half_requests_hold_at_most_the_cap_in_threads(server: MetricsServer) -> None:
    before = threading.active_count()
    idle = _half_requests(server, 40)
    try:
        deadline = time.monotonic() + 30
        while server._server.refused < 40 - metrics.MAX_CONNECTIONS and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server._server.refused == 40 - metrics.MAX_CONNECTIONS
        assert threading.active_count() - before <= metrics.MAX_CONNECTIONS
    finally:
        for connection in idle:
            connection.close()


def test_an_idle_connection_is_dropped_after_the_timeout_and_a_scrape_is_then_answered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metrics, "REQUEST_TIMEOUT_S", 0.5)
    server = MetricsServer(RelayStats("egress"), "127.0.0.1", 0)
    server.start()
    idle = _half_requests(server, metrics.MAX_CONNECTIONS)
    try:
        started = time.monotonic()
        assert idle[0].recv(1024) == b""  # the server closed it: the request never completed
        assert time.monotonic() - started < 3
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=3) as reply:
            assert reply.status == 200
    finally:
        for connection in idle:
            connection.close()
        server.close()
