"""The receiver's report (``probe recv --json``): its JSON both ways, malformed lines, the ok rule."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from probe_support import sample_report

from mcastkit.probe.receiver import ReceiveResult
from mcastkit.probe.report import Latency, ProbeReport, ReportError, within_budget
from mcastkit.probe.stats import StreamStats

#: A line as ``probe recv --json`` printed it before the report had a type (README: probe recv).
EARLIER_LINE = (
    '{"group": "239.1.1.1:5001", "interface": "10.77.2.21", "stream_id": 3141592653, "expected": 10, '
    '"received": 9, "unique": 8, "lost": 2, "loss": 0.2, "duplicates": 1, "reordered": 1, "unexpected": 0, '
    '"latency_us": {"p50": 210.4, "p99": 394, "max": 401.0}, "foreign": 3, "seconds": 2.503, '
    '"stopped_by": "idle", "max_loss": 1, "ok": true}'
)


def test_a_report_made_from_a_receive_result_comes_back_from_its_json_line() -> None:
    stats = StreamStats(expected=10)
    for sequence in (0, 1, 3, 2, 2, 5, 12):
        stats.record(sequence, sent_ns=1_000, received_ns=3_000 + 1_000 * sequence)
    result = ReceiveResult(stats=stats, stream_id=42, foreign=2, seconds=1.23456, stopped_by="idle")
    report = ProbeReport.of(result, group="239.1.1.1:5001", interface="127.0.0.1", max_loss=0.5)

    line = report.to_json()
    assert "\n" not in line
    assert ProbeReport.from_json(line) == report
    document = json.loads(line)
    # The keys, in the order probe recv --json has always printed them (the README documents it).
    assert list(document) == [
        "group", "interface", "stream_id", "expected", "received", "unique", "lost", "loss",
        "duplicates", "reordered", "unexpected", "latency_us", "foreign", "seconds", "stopped_by",
        "max_loss", "ok",
    ]  # fmt: skip
    assert document["received"] == 7 and document["unique"] == 5 and document["lost"] == 5
    assert document["loss"] == 0.5 and document["duplicates"] == 1 and document["unexpected"] == 1
    assert document["seconds"] == 1.235 and document["ok"] is True
    assert document["latency_us"] == {"p50": 4.0, "p99": 7.0, "max": 7.0}


def test_a_line_printed_before_the_report_had_a_type_still_reads() -> None:
    report = ProbeReport.from_json(EARLIER_LINE)
    assert report.stream_id == 3141592653 and report.unique == 8 and report.lost == 2
    assert report.latency_us == Latency(p50=210.4, p99=394.0, max=401.0)
    assert report.max_loss == 1.0 and isinstance(report.max_loss, float)
    assert report.to_dict() == json.loads(EARLIER_LINE)


def test_a_receiver_that_heard_nothing_reports_no_stream_and_no_latency() -> None:
    silent = ProbeReport.of(
        ReceiveResult(stats=StreamStats(5), stopped_by="timeout"), group="g", interface="i", max_loss=1.0
    )
    assert silent.stream_id is None and silent.latency_us == Latency()
    assert ProbeReport.from_json(silent.to_json()) == silent
    assert json.loads(silent.to_json())["latency_us"] == {"p50": None, "p99": None, "max": None}


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("", "Expecting value at column 1"),
        ("mcastkit: error: loss 100.0000% exceeds --max-loss 0.0000%", "Expecting value at column 1"),
        ('{"group": "239.1.1.1:5001", "unique": ', "Expecting value at column"),
        ('["group", "unique"]', "not a JSON object"),
        (EARLIER_LINE.replace('"unique": 8, ', ""), "no 'unique'"),
        (EARLIER_LINE.replace('"unique": 8', '"unique": "8"'), "'unique' is '8', not a whole number"),
        (EARLIER_LINE.replace('"unique": 8', '"unique": 8.0'), "'unique' is 8.0, not a whole number"),
        (EARLIER_LINE.replace('"foreign": 3', '"foreign": true'), "'foreign' is True, not a whole number"),
        (EARLIER_LINE.replace('"expected": 10', '"expected": null'), "'expected' is None, not a whole"),
        (EARLIER_LINE.replace('"p99": 394', '"p99": "394"'), "'latency_us.p99' is '394', not a number"),
        (EARLIER_LINE.replace('"max_loss": 1', '"max_loss": "all"'), "'max_loss' is 'all', not a number"),
    ],
)
def test_a_malformed_line_says_what_is_wrong_and_shows_the_line(line: str, problem: str) -> None:
    with pytest.raises(ReportError) as caught:
        ProbeReport.from_json(line)
    message = str(caught.value)
    assert message.startswith("not a probe report (")
    assert problem in message
    assert repr(line[:80])[:-1] in message  # what the receiver printed, so the lab can show it
    assert isinstance(caught.value, ValueError)


def test_a_long_malformed_line_is_shown_cut_short() -> None:
    with pytest.raises(ReportError) as caught:
        ProbeReport.from_json("x" * 1000)
    assert str(caught.value).endswith("x" * 80 + "...'")


@pytest.mark.parametrize(
    ("unique", "max_loss", "ok"),
    [
        (100, 0.0, True),  # nothing lost: within any budget
        (99, 0.0, False),  # one lost of 100 with no budget
        (99, 0.01, True),  # loss exactly at the budget passes
        (98, 0.01, False),  # just over it fails
        (1, 0.99, True),
        (0, 1.0, False),  # nothing heard never passes, even with --max-loss 1
    ],
)
def test_ok_is_heard_and_loss_at_most_the_budget(unique: int, max_loss: float, ok: bool) -> None:
    report = sample_report(expected=100, unique=unique, max_loss=max_loss)
    assert report.ok() is ok
    assert report.to_dict()["ok"] is ok
    assert (
        sample_report(expected=100, unique=unique, max_loss=0.5).ok(max_loss) is ok
    )  # judged by another budget


def test_ok_judges_the_exact_loss_not_the_rounded_one_in_the_json() -> None:
    report = sample_report(expected=10_000_000, unique=9_999_999, max_loss=0.0)
    assert report.to_dict()["loss"] == 0.0  # 1e-7 rounds away in the JSON...
    assert not report.ok()  # ...but one datagram lost is still over a zero budget
    assert not ProbeReport.from_json(report.to_json()).ok()


def test_the_one_rule_serves_every_probe_judgement() -> None:
    assert within_budget(heard=1, loss=0.0, max_loss=0.0)
    assert within_budget(heard=5, loss=-0.5, max_loss=0.0)  # a monitor interval that filled old gaps
    assert not within_budget(heard=0, loss=0.0, max_loss=1.0)
    assert not within_budget(heard=10, loss=0.25, max_loss=0.2)
    report = sample_report(unique=75, max_loss=0.25)
    assert report.ok() == within_budget(report.unique, report.loss, 0.25)
    assert replace(report, unique=0).ok() is False
