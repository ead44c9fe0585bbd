"""What the lab reads back without building one: relay counters from /metrics text, the
receivers' reports, and the stream's verdict (no namespaces, no root)."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import pytest
from probe_support import sample_report

from mcastkit.commands.lab import render_table
from mcastkit.lab.session import LabState, Member, StreamReport, counters_from_metrics
from mcastkit.net.addresses import AddressError, GroupPort
from mcastkit.probe.report import Latency, ProbeReport
from mcastkit.relay.metrics import RelayStats, render

#: Prometheus text as a relay serves it, with what the lab must leave out: bytes, gauges, the info
#: metric, and a ``_created`` sample (prometheus_client's own counters add one).
METRICS = """\
# HELP mcastkit_relay_info Relay role and version
# TYPE mcastkit_relay_info gauge
mcastkit_relay_info{role="ingress",version="0.1.0"} 1.0
# HELP mcastkit_relay_datagrams_in_total Datagrams received
# TYPE mcastkit_relay_datagrams_in_total counter
mcastkit_relay_datagrams_in_total{group="239.1.1.1:5001"} 3000.0
mcastkit_relay_datagrams_in_total{group="239.1.1.2:5002"} 500.0
mcastkit_relay_datagrams_in_created{group="239.1.1.1:5001"} 1.7e+09
# HELP mcastkit_relay_bytes_in_total Payload bytes received
# TYPE mcastkit_relay_bytes_in_total counter
mcastkit_relay_bytes_in_total{group="239.1.1.1:5001"} 192000.0
# HELP mcastkit_relay_drops_total Datagrams dropped instead of forwarded
# TYPE mcastkit_relay_drops_total counter
mcastkit_relay_drops_total{reason="oversize"} 2.0
mcastkit_relay_drops_total{reason="send_error"} 1.0
# HELP mcastkit_relay_disconnects_total Relay links closed, by reason
# TYPE mcastkit_relay_disconnects_total counter
# HELP mcastkit_relay_peers Authenticated peers connected
# TYPE mcastkit_relay_peers gauge
mcastkit_relay_peers 1.0
# HELP mcastkit_relay_reconnects_total Links re-established after a failure
# TYPE mcastkit_relay_reconnects_total counter
mcastkit_relay_reconnects_total 4.0
"""


def test_relay_counters_are_summed_over_labels_without_bytes_or_gauges() -> None:
    assert counters_from_metrics("ingress", METRICS) == {
        "ingress.datagrams_in": 3500.0,
        "ingress.drops": 3.0,
        "ingress.reconnects": 4.0,
    }


def test_relay_counters_read_what_the_relay_itself_serves() -> None:
    stats = RelayStats(role="egress")
    stats.group("239.1.1.1:5001").datagrams_out = 20
    stats.group("239.1.1.2:5002").datagrams_out = 5
    stats.group("239.1.1.2:5002").bytes_out = 320
    stats.group("239.1.1.2:5002").gaps = 2
    stats.disconnects["slow_peer"] = 1
    counters = counters_from_metrics("egress", render(stats).decode())
    assert counters["egress.datagrams_out"] == 25.0
    assert counters["egress.gaps"] == 2.0 and counters["egress.disconnects"] == 1.0
    assert counters["egress.datagrams_in"] == 0.0  # counted, though nothing moved
    assert not [key for key in counters if "bytes" in key or "peers" in key or "info" in key]
    assert "egress.datagrams_due" not in counters  # the ingress's alone


def test_metrics_text_that_is_not_prometheus_is_an_error() -> None:
    with pytest.raises(ValueError):
        counters_from_metrics("ingress", 'mcastkit_relay_gaps_total{group="239.1.1.1:5001"} many\n')


def _report(unique: int, expected: int = 100) -> ProbeReport:
    """A receiver's report as the lab reads it back (its address in the lab, any loss accepted)."""
    return replace(
        sample_report(expected=expected, unique=unique, max_loss=1.0),
        interface="10.77.2.21",
        latency_us=Latency(p50=210.0, p99=394.0, max=400.0),
    )


def _stream(*members: Member, frames: int | None = 0) -> StreamReport:
    return StreamReport(
        origin="datacenter",
        group="239.1.1.1:5001",
        count=100,
        rate=1000,
        size="64",
        cpus={"datacenter": [0], "aws": [1]},
        sender={"sent": 100, "achieved_rate": 1000},
        members=members,
        outsider="rx3",
        outsider_address="10.77.2.23",
        frames=frames,
        socket_buffer_drops={"rx1": 0, "ingress-host": 0},
    )


def test_a_member_is_read_from_the_last_json_line_its_receiver_printed() -> None:
    output = "some warning\n" + _report(100).to_json() + "\n"
    member = Member.from_output("rx1", "10.77.2.21", output, {"V2"})
    assert member.report == _report(100) and member.igmp == ("V2",) and member.problem == ""


@pytest.mark.parametrize(
    ("output", "problem"),
    [
        ("", "no probe report; its output ends: "),
        ("Traceback (most recent call last):\n  boom\n", "its output ends: Traceback"),
        ('{"unique": 3}\n', "not a probe report (no 'group')"),
    ],
)
def test_a_member_without_a_report_keeps_what_went_wrong(output: str, problem: str) -> None:
    member = Member.from_output("rx1", "10.77.2.21", output, set())
    assert member.report is None and problem in member.problem
    assert member.to_dict() == {
        "name": "rx1",
        "member": True,
        "address": "10.77.2.21",
        "error": member.problem,
        "igmp": [],
    }


def test_a_stream_is_ok_when_every_member_is_within_budget_and_the_outsider_saw_nothing() -> None:
    rx1 = Member("rx1", "10.77.2.21", ("V2",), _report(100))
    rx2 = Member("rx2", "10.77.2.22", ("V2",), _report(99))
    stream = _stream(rx1, rx2)
    assert not stream.ok(0.0) and stream.ok(0.01)  # rx2 lost 1 of 100: the member's own rule
    assert not _stream(rx1, frames=1).ok(1.0)  # snooping let a frame through
    assert not _stream(rx1, frames=None).ok(1.0)  # the sniffer said nothing: not proven
    assert not _stream(rx1, Member("rx2", "10.77.2.22", (), None, problem="no report")).ok(1.0)
    assert not _stream(Member("rx1", "10.77.2.21", ("V2",), _report(0))).ok(1.0)  # heard nothing


def test_the_lab_run_json_keeps_its_keys_and_judges_by_the_budget_given() -> None:
    rx1 = Member("rx1", "10.77.2.21", ("V2",), _report(99))
    stream = replace(_stream(rx1), path="relay", relay={"ingress.datagrams_in": 100})
    document = json.loads(json.dumps(stream.to_dict(max_loss=0.0)))
    assert list(document) == [
        "path", "socket_buffer_drops", "origin", "cpus", "group", "count", "rate", "size", "sender",
        "receivers", "ok", "relay",
    ]  # fmt: skip
    member, outsider = document["receivers"]
    assert member == {
        "name": "rx1",
        "member": True,
        "address": "10.77.2.21",
        **_report(99).to_dict(),
        "igmp": ["V2"],
    }
    assert outsider == {"name": "rx3", "member": False, "address": "10.77.2.23", "frames": 0}
    assert document["ok"] is False and stream.to_dict(max_loss=0.01)["ok"] is True
    assert "relay" not in _stream(rx1).to_dict(0.0) and "path" not in _stream(rx1).to_dict(0.0)


def test_the_table_shows_each_member_and_says_when_one_printed_no_report() -> None:
    stream = replace(
        _stream(
            Member("rx1", "10.77.2.21", ("V2",), _report(99)),
            Member(
                "rx2", "10.77.2.22", (), None, problem="no probe report; its output ends: a\nlast words\n"
            ),
        ),
        path="direct",
    )
    lines = render_table(stream).splitlines()
    assert lines[0] == "direct path, 239.1.1.1:5001: sent 100 x 64 B at 1000/s (target 1000)"
    assert lines[2].split() == ["rx1", "member", "V2", "99", "1", "1.00%", "0", "0", "210", "394"]
    assert lines[3].split() == ["rx2", "member", "-", "no", "report", "last", "words"]  # one line per member
    assert lines[4].split()[:4] == ["rx3", "not", "joined", "-"] and " 0 " in lines[4]


def test_the_lab_group_is_read_as_a_group_and_port() -> None:
    state = LabState("lab1", 2, "239.1.1.1:5001", relay=True)
    assert state.group_port == GroupPort("239.1.1.1", 5001)
    with pytest.raises(
        AddressError, match=r"the lab's group '10\.0\.0\.1:5001': 10\.0\.0\.1 is not a multicast"
    ):
        _ = LabState(**{**asdict(state), "group": "10.0.0.1:5001"}).group_port
