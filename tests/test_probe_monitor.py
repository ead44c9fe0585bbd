"""An open-ended probe stream: interval counts, and `probe send/recv --count 0` on loopback."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from io import StringIO

from probe_support import LOOPBACK, loopback_receiver, needs_loopback_multicast, random_group

from mcastkit.cli import Console, main
from mcastkit.exit import ExitStatus
from mcastkit.probe.monitor import WINDOW, RunningStats


def _record(stats: RunningStats, *sequences: int) -> None:
    for sequence in sequences:
        stats.record(sequence, 1_000, 3_000)


def test_an_interval_counts_gaps_late_datagrams_and_duplicates() -> None:
    stats = RunningStats()
    _record(stats, 100, 101, 104, 105)  # the first one heard starts the count; 102, 103 skipped
    first = stats.interval(time.monotonic())
    assert (first["received"], first["lost"], first["missing"]) == (4, 2, 2)
    assert first["latency_us"] == {"p50": 2.0, "p99": 2.0, "max": 2.0}
    _record(stats, 103, 106, 106, 107)  # 103 arrives late; 106 twice
    second = stats.interval(time.monotonic())
    assert (second["received"], second["reordered"], second["duplicates"]) == (4, 1, 1)
    assert (second["lost"], second["missing"]) == (-1, 1)  # the late one fills an earlier gap
    assert second["loss"] == -0.5  # over the 2 new sequence numbers 106 and 107
    empty = stats.interval(time.monotonic())
    assert (empty["received"], empty["lost"], empty["latency_us"]["p50"]) == (0, 0, None)


def test_a_new_stream_starts_the_count_again() -> None:
    stats = RunningStats()
    _record(stats, 5000, 5001)
    stats.restart()
    _record(stats, 0, 1, 2)  # would be duplicates or ancient without the restart
    interval = stats.interval(time.monotonic())
    assert (interval["received"], interval["duplicates"], interval["lost"], interval["restarts"]) == (
        5,
        0,
        0,
        1,
    )


def test_slots_are_reused_across_the_window() -> None:
    stats = RunningStats()
    _record(stats, 0, WINDOW, WINDOW + 1)  # WINDOW shares slot 0 with sequence 0
    interval = stats.interval(time.monotonic())
    assert (interval["duplicates"], interval["missing"]) == (0, WINDOW - 1)
    _record(stats, WINDOW * 3 + 5, 1)  # a jump past the whole window; 1 is too old to judge
    interval = stats.interval(time.monotonic())
    assert interval["duplicates"] == 0 and interval["reordered"] == 1
    _record(stats, WINDOW * 3 + 5)
    assert stats.interval(time.monotonic())["duplicates"] == 1


@needs_loopback_multicast
def test_cli_recv_reports_every_interval_of_an_open_ended_stream() -> None:
    group = str(random_group())
    console = Console(out=StringIO(), err=StringIO())
    outcome: list[int] = []
    recv = ["probe", "recv", "--group", group, "--interface", LOOPBACK, "--count", "0", "--json"]
    receiver = threading.Thread(
        target=lambda: outcome.append(main([*recv, "--report-every", "0.5", "--timeout", "5"], console))
    )
    receiver.start()
    time.sleep(0.3)
    sender_console = Console(out=StringIO(), err=StringIO())
    send = ["probe", "send", "--group", group, "--interface", LOOPBACK, "--ttl", "1", "--json"]
    assert main([*send, "--count", "8000", "--rate", "4000"], sender_console) == ExitStatus.OK
    receiver.join(15)
    reports = [json.loads(line) for line in console.out.getvalue().splitlines()]
    assert 6 <= len(reports) <= 10  # one per 0.5 s of 5 s (a stalled loop merges intervals)
    assert sum(report["received"] for report in reports) == 8000
    assert sum(report["lost"] for report in reports) == 0 and reports[-1]["missing"] == 0
    assert all(
        report["stream_id"] == json.loads(sender_console.out.getvalue())["stream_id"] for report in reports
    )
    heard = [report for report in reports if report["received"]]
    assert len(heard) >= 4  # the 2 s stream spans at least 4 intervals
    assert all(report["ok"] and report["latency_us"]["p99"] is not None for report in heard)
    # The stream ended (after about 2.3 s) before the receiver did: the last interval heard
    # nothing, which is not ok.
    assert reports[-1]["received"] == 0 and reports[-1]["ok"] is False
    assert outcome == [ExitStatus.FAILURE]


@needs_loopback_multicast
def test_send_without_a_count_runs_until_sigterm_and_reports() -> None:
    group = random_group()
    process = subprocess.Popen(
        [
            *(
                sys.executable,
                "-m",
                "mcastkit",
                "probe",
                "send",
                "--group",
                str(group),
                "--interface",
                LOOPBACK,
            ),
            *("--ttl", "1", "--count", "0", "--rate", "1000", "--json"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with loopback_receiver(group, timeout=10) as listen:
        listen.recv(100)  # the sender is running, so its SIGTERM handler is in place
        time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=10)
    assert process.returncode == ExitStatus.OK, err
    report = json.loads(out)
    assert report["sent"] >= 400 and report["send_errors"] == 0  # at least the 0.5 s at 1000/s
