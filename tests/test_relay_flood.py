"""A listening relay under a flood of 500 reconnecting strangers: the real peer still gets in.

Runs ``bench/relay_flood.py``'s measurement (the relay and the flood as processes of their own):
at least 19 of 20 handshakes complete within 5 s, no traceback, and the log stays short.
"""

from __future__ import annotations

import pytest
from bench_support import load_bench


@pytest.mark.timeout(120)
@pytest.mark.parametrize("hold", [0.0, 1.0], ids=["recycling", "holding"])
@pytest.mark.parametrize("role", ["ingress", "egress"])
def test_a_real_peer_authenticates_under_500_reconnecting_strangers(role: str, hold: float) -> None:
    result = load_bench("relay_flood").run(role, strangers=500, attempts=20, hold=hold)
    counters = result["relay_counters"]
    pressed = counters.get('disconnects_total{reason="handshake_evicted"}', 0) + counters.get(
        "auth_failures_total", 0
    )
    assert pressed > 1000, f"the flood did not press the relay: {result}"
    assert result["authenticated_within_5s"] >= 19, result
    assert result["tracebacks"] == 0, result["relay_log"]
    assert result["relay_log_lines"] < 200, result["relay_log"]  # one line per reason every 10 s
