#!/usr/bin/env python3
"""Sequenced-stream benchmark; prints JSON (not a test). Run as root for the lab cases.

Cases (``--cases``, default all), each repeated ``--repeat`` times (default 3), interleaved, and
judged on the median:

- ``loss``: the lab's stream path (``lab stream``): raw datagrams from the datacenter through
  the relays to the sequencer on rx1, MoldUDP64 across the bridge, 1 % of the packets dropped on
  the way into rx2 (iptables ``statistic``); 64-512 B at 50,000 msg/s for ``--seconds``. Twice:
  recovery by MoldUDP64 re-request and by SoupBinTCP replay. Goal: zero unrecovered; the p99
  delivery latency of the recovered messages is reported (end to end, from the probe's send
  stamp, and from the gap's detection).
- ``sequencer``: a publisher in the VPC (the egress host, on the datacenter's CPU) at
  200,000 msg/s of 64-512 B into the sequencer, which journals and publishes; the bus logger on
  rx2 follows. The sequencer and the logger share the lab's other CPU. Goal: every message
  sequenced, and logged in order, none recovered (zero loss), the publisher reaching >= 200k/s.
  Twice: with the default ``--fsync interval`` and with ``--fsync none`` (case
  ``sequencer-fsync-none``), side by side. Also: CPU seconds (user and system, the process's
  whole life) per million messages of the sequencer and the logger.
- ``replay``: a journal of ``--replay-messages`` (default 10 million) 64-byte messages; a
  replay server in a process of its own; a client logs in at 1 and counts every message
  (SoupBinTCP over loopback, the client parsing each packet). Goal: >= 1,000,000 msg/s.

    python bench/stream_bench.py > bench/out/stream.json        # or: sudo make bench-stream
    python bench/stream_bench.py --table bench/out/stream.json  # the README table
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from relay_bench import load_average, spread

from mcastkit.lab.session import Lab
from mcastkit.lab.stream import run_stream
from mcastkit.net.addresses import Endpoint
from mcastkit.probe.wire import SizeRange
from mcastkit.stream import mold, soup
from mcastkit.stream.journal import Fsync, Journal
from mcastkit.stream.replay import ReplayServer, replay

LAB = "mckbench"
SIZES = SizeRange(64, 512)
GOALS = {
    "loss_unrecovered": 0,
    "sequencer_rate": 200_000,
    "replay_rate": 1_000_000,
}


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def loss_run(lab: Lab, recovery: str, seconds: float) -> dict[str, Any]:
    rate = 50_000
    report = run_stream(lab, count=int(rate * seconds), rate=rate, size=SIZES, loss=0.01, recovery=recovery)  # type: ignore[arg-type]
    received = report.receivers.get("rx2", {})
    return {
        "ok": report.ok(),
        "sent_rate": report.sender.get("achieved_rate"),
        "delivered": received.get("delivered"),
        "recovered": received.get("recovered"),
        "unrecovered": received.get("unrecovered"),
        "dropped_packets": report.dropped.get("rx2"),
        "p99_all_us": (received.get("latency_us") or {}).get("p99"),
        "p99_recovered_us": (received.get("latency_recovered_us") or {}).get("p99"),
        "p99_gap_fill_us": (received.get("gap_fill_us") or {}).get("p99"),
        "requests": received.get("requests"),
        "problems": report.problems,
    }


def sequencer_run(lab: Lab, seconds: float, fsync: Fsync) -> dict[str, Any]:
    rate = 200_000
    count = int(rate * seconds)
    report = run_stream(
        lab, count=count, rate=rate, size=SIZES, source="vpc", receivers=0, logger=True, fsync=fsync
    )
    logger = report.logger or {}
    sequencer = report.sequencer
    per_million = 1e6 / count
    return {
        "ok": report.ok() and logger.get("recovered") == 0 and sequencer.get("messages") == count,
        "sent_rate": report.sender.get("achieved_rate"),
        "sequenced": sequencer.get("messages"),
        "logged_lines": logger.get("lines"),
        "logger_delivered": logger.get("delivered"),
        "logger_recovered": logger.get("recovered"),
        "logger_unrecovered": logger.get("unrecovered"),
        "logger_gaps": logger.get("gaps"),
        "send_errors": sequencer.get("send_errors"),
        "logger_p99_us": (logger.get("latency_us") or {}).get("p99"),
        "sequencer_cpu_s_per_million": round(sequencer.get("cpu_seconds", 0) * per_million, 3),
        "logger_cpu_s_per_million": round(logger.get("cpu_seconds", 0) * per_million, 3),
        "socket_buffer_drops": report.socket_buffer_drops,
        "problems": report.problems,
    }


def serve(directory: Path) -> None:
    """The replay server's process: serve ``directory`` on loopback, say the port, run until killed."""
    journal = Journal.for_reading(directory)
    server = ReplayServer(journal, mold.session_field(journal.session), Endpoint("127.0.0.1", 0))
    server.start()
    print(server.port, flush=True)
    while True:
        time.sleep(3600)


def make_journal(directory: Path, count: int) -> None:
    journal = Journal(directory, "BENCH", fsync=Fsync.NONE)
    batch = 10_000
    records = b"".join(soup.sequenced(n.to_bytes(8, "big") * 8) for n in range(batch))
    for _ in range(count // batch):
        journal.append_records(records, batch)
    journal.close()
    # On disk before the lab cases: the kernel flushing 670 MB in their middle (30 s later, when
    # the pages expire) stalled the sequencer's own journal writes, and it lost input.
    os.sync()


def replay_run(directory: Path, count: int) -> dict[str, Any]:
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(directory)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        got = [0]

        def deliver(first: int, messages: list[bytes]) -> bool:
            got[0] += len(messages)
            return got[0] < count

        started = time.perf_counter()
        replay(Endpoint("127.0.0.1", port), "BENCH", 1, deliver, timeout=30)
        seconds = time.perf_counter() - started
    finally:
        server.kill()
        server.wait()
    return {
        "ok": got[0] >= count,
        "messages": got[0],
        "seconds": round(seconds, 3),
        "rate": round(got[0] / seconds),
    }


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for case, results in runs.items():
        keys = [
            k
            for k in results[0]
            if isinstance(results[0][k], (int, float)) and not isinstance(results[0][k], bool)
        ]
        summary[case] = {key: spread([r.get(key) for r in results]) for key in keys}
        summary[case]["runs_ok"] = sum(1 for r in results if r.get("ok"))
        summary[case]["runs"] = len(results)
    return summary


def goals(summary: dict[str, Any]) -> list[dict[str, Any]]:
    def median(case: str, key: str) -> Any:
        return summary.get(case, {}).get(key, {}).get("median")

    out = []
    for case in ("loss-retransmit", "loss-replay"):
        value = median(case, "unrecovered")
        out.append(
            {
                "goal": f"{case}: zero unrecovered at 1 % loss, 50k msg/s",
                "measured": value,
                "met": None
                if value is None
                else value == 0 and summary[case]["runs_ok"] == summary[case]["runs"],
            }
        )
    for case, how in (("sequencer", "fsync interval (default)"), ("sequencer-fsync-none", "fsync none")):
        rate = median(case, "sent_rate")
        if rate is None:
            continue
        runs_ok, runs = summary[case]["runs_ok"], summary[case]["runs"]
        out.append(
            {
                "goal": f"sequencer + bus logger, {how}: 200k msg/s of 64-512 B, zero loss in every run",
                "measured": f"{rate:,.0f} msg/s sent, {runs_ok} of {runs} runs lossless",
                "met": rate >= GOALS["sequencer_rate"] * 0.99 and runs_ok == runs,
            }
        )
    rate = median("replay", "rate")
    out.append(
        {
            "goal": "replay of 10M x 64 B over TCP >= 1M msg/s",
            "measured": rate,
            "met": None if rate is None else rate >= GOALS["replay_rate"],
        }
    )
    return out


def table(output: dict[str, Any]) -> str:
    s = output["summary"]

    def cell(case: str, key: str, unit: str = "") -> str:
        m = s.get(case, {}).get(key)
        if not m or m["median"] is None:
            return "-"
        return f"{m['median']:,.0f}{unit} ({m['min']:,.0f}-{m['max']:,.0f})"

    lines = ["| case | result (median, range over runs) |", "| --- | --- |"]
    for case in ("loss-retransmit", "loss-replay"):
        if case in s:
            lines.append(
                f"| {case}: 1 % loss, 50k msg/s, 64-512 B | unrecovered {cell(case, 'unrecovered')}, "
                f"recovered {cell(case, 'recovered')}; one-way p99 of the recovered messages "
                f"{cell(case, 'p99_recovered_us', ' µs')}, of all {cell(case, 'p99_all_us', ' µs')}; "
                f"p99 gap detected to filled {cell(case, 'p99_gap_fill_us', ' µs')} |"
            )
    for case, how in (("sequencer", "fsync interval"), ("sequencer-fsync-none", "fsync none")):
        if case in s:
            lines.append(
                f"| sequencer ({how}) + bus logger, 64-512 B, target 200k msg/s | "
                f"sent {cell(case, 'sent_rate', '/s')}, sequenced {cell(case, 'sequenced')}, "
                f"logged {cell(case, 'logged_lines')}, "
                f"lossless runs {s[case]['runs_ok']} of {s[case]['runs']}; "
                f"CPU s per 1M: sequencer {s[case]['sequencer_cpu_s_per_million']['median']}, "
                f"logger {s[case]['logger_cpu_s_per_million']['median']} |"
            )
    if "replay" in s:
        lines.append(
            f"| replay, {output['replay_messages']:,} x 64 B over TCP | {cell('replay', 'rate', ' msg/s')} |"
        )
    lines.append("")
    lines += [
        f"- {g['goal']}: measured {g['measured']}, {'met' if g['met'] else 'NOT met'}"
        for g in output["goals"]
    ]
    lines.append(f"- load average at start {output['load_average_start']}, machine {output['machine']}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", default="loss,sequencer,replay")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="stream length of the lab cases (default 10)"
    )
    parser.add_argument("--replay-messages", type=int, default=10_000_000)
    parser.add_argument("--table", metavar="JSON")
    parser.add_argument("--serve", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve))
        return 0
    if args.table:
        print(table(json.loads(Path(args.table).read_text())))
        return 0
    cases = args.cases.split(",")
    output: dict[str, Any] = {
        "machine": f"{platform.machine()} {len(os.sched_getaffinity(0))} CPUs",
        "load_average_start": load_average(),
        "repeat": args.repeat,
        "seconds": args.seconds,
        "replay_messages": args.replay_messages,
        "command": " ".join(sys.argv),
    }
    runs: dict[str, list[dict[str, Any]]] = {}
    workdir = Path(tempfile.mkdtemp(prefix="mcastkit-stream-bench-"))
    try:
        if "replay" in cases:
            log(f"writing a journal of {args.replay_messages:,} messages")
            make_journal(workdir / "journal", args.replay_messages)
        lab = Lab(LAB)
        lab_cases = [c for c in cases if c in ("loss", "sequencer")]
        if lab_cases:
            lab.down()
            lab.up(members=2)
        try:
            for number in range(1, args.repeat + 1):
                if "loss" in cases:
                    for recovery in ("retransmit", "replay"):
                        log(f"run {number}: loss, {recovery}")
                        runs.setdefault(f"loss-{recovery}", []).append(loss_run(lab, recovery, args.seconds))
                if "sequencer" in cases:
                    for fsync, case in ((Fsync.INTERVAL, "sequencer"), (Fsync.NONE, "sequencer-fsync-none")):
                        log(f"run {number}: {case}")
                        runs.setdefault(case, []).append(sequencer_run(lab, args.seconds, fsync))
                if "replay" in cases:
                    log(f"run {number}: replay")
                    runs.setdefault("replay", []).append(
                        replay_run(workdir / "journal", args.replay_messages)
                    )
                    log(f"  {runs['replay'][-1]}")
        finally:
            if lab_cases:
                lab.down()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    output["runs"] = runs
    output["summary"] = summarise(runs)
    output["goals"] = goals(output["summary"])
    output["load_average_end"] = load_average()
    print(json.dumps(output, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
