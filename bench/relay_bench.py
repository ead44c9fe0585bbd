#!/usr/bin/env python3
"""Relay benchmark in the network-namespace lab; prints JSON (not a test).

Paths, over the same namespaces, links and bridge:

- ``direct``: probe sender on the AWS segment -> receiver (the baseline: what Python and the
  kernel deliver with no relay at all; it bounds what any relayed path can show here);
- ``relay``: datacenter source -> mcastkit ingress -> TCP over the routed link -> egress -> receiver;
- ``udptunnel``: the same path with Debian's ``udptunnel`` (C, multicast mode) instead of the relay.

For 64 and 1024-byte datagrams, and for sizes drawn per datagram from 64-512 bytes (a feed's
messages vary, so the egress finds few runs of equal size to send as one GSO message), each
path steps the rate up until a step loses a datagram or does not keep up (a failing step is
retried once) or the sender cannot reach the target; the highest lossless *achieved* rate is
reported, with one-way latency p50/p99 of the 50k msg/s step.

Variants (``--variants``, default ``gro-split,nogro-shared``), each in a lab of its own:

- ``gro-split``: the receiving hosts' NICs coalesce bursts (GRO on, as a real NIC has) and the
  datacenter site and the AWS site each get half of the CPUs, as two hosts would;
- ``nogro-shared``: GRO off on the receiving hosts (``lab up --no-gro``) and every process on any
  CPU (``lab up --shared-cpus``): no coalescing to help, and the sites compete for the CPUs.

A variant name is ``gro|nogro`` and ``split|shared``, so ``gro-shared`` and ``nogro-split`` work
too; ``--variants gro-shared`` is what the former ``--shared-cpus`` flag ran (the flag is gone).

``--repeat N`` (default 3) runs every (variant, path, size) stepping N times, interleaved (run 1
of every size and path, then run 2...), so a change in the machine's load touches every case
alike. The ``summary`` gives per case the median and range (min, max) over the runs of the max
zero-loss rate (a run where no step passed counts as 0 msg/s, and ``runs_without_passing_step``
says how many), of p50/p99 at 50k msg/s, of p99 at the max rate and of the sender's rate at
the highest step, and every run's ``stopped_by``. The load average is recorded at the start,
at each variant's start and at each run's.

Goals (issue 12), judged on the medians (``goals`` in the JSON: ``met`` true or false, null
when not measured):

- relay, 64 B and 64-512 B: zero loss at >= 150,000 msg/s, in both variants;
- relay, 64 B and 64-512 B: one-way p99 at 50k msg/s <= 250 µs in gro-split, <= 1,000 µs in
  nogro-shared;
- the probe sender (the direct path's achieved send rate at its highest step), 64-512 B:
  >= 300,000 msg/s, in both variants.

Run as root, on an otherwise idle machine (the load averages are in the output)::

    python bench/relay_bench.py --install > bench/out/relay.json     # or: sudo make bench-relay
    python bench/relay_bench.py --table bench/out/relay.json         # the README table

One repeat of one variant took about 5 minutes for direct and relay on 2 CPUs; ``--budget``
(default 5400 s) bounds the whole invocation: stepping stops when it runs out, and the JSON
says which runs it cut short (``cut_short_by_budget``, ``budget.runs_cut_short``) or never
started (``budget.runs_not_started``).
Every relay benchmark figure in the README must come from this output (``--table``), with its
command and load averages: no figure from a single hand-picked run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from mcastkit.lab import netns
from mcastkit.lab.netns import LabError
from mcastkit.lab.session import Lab, relay_available
from mcastkit.lab.topology import EGRESS_ADDRESS
from mcastkit.net.addresses import GroupPort
from mcastkit.probe.wire import SizeRange

LAB_NAME = "mckbench"
RATES = (
    1_000,
    5_000,
    10_000,
    25_000,
    50_000,
    75_000,
    100_000,
    150_000,
    200_000,
    250_000,
    300_000,
    400_000,
    500_000,
)
#: Fixed sizes, and sizes drawn per datagram (a feed's messages vary: runs of equal size are short)
SIZES = (SizeRange(64, 64), SizeRange(1024, 1024), SizeRange(64, 512))
LATENCY_RATE = 50_000
DIRECT_GROUP = GroupPort("239.1.3.1", 5003)
UDPTUNNEL_GROUP = GroupPort("239.1.2.1", 5002)
UDPTUNNEL_PORT = 7401
#: A step whose sender reached less than this share of the target rate ends the stepping.
SENDER_LIMIT = 0.95
#: A lossless step still fails when the path only buffered the stream and delivered it late:
#: p99 above this means the path did not keep up with the rate (it drains a backlog).
KEEP_UP_P99_US = 100_000.0
#: Receivers stop this long after the last datagram.
IDLE = 3.0
DEFAULT_VARIANTS = ("gro-split", "nogro-shared")
DEFAULT_REPEAT = 3
#: Seconds for the whole invocation (every repeat of every variant).
DEFAULT_BUDGET = 5400.0
#: Goals of issue 12 (see the module docstring).
GOAL_RELAY_RATE = 150_000
GOAL_RELAY_P99_US = {"gro-split": 250.0, "nogro-shared": 1000.0}
GOAL_SENDER_RATE = 300_000


def log(message: str) -> None:
    print(f"[{Path(sys.argv[0]).stem} {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def udptunnel_status(install: bool) -> dict[str, Any]:
    binary = shutil.which("udptunnel")
    if binary is None and install:
        log("udptunnel missing: apt-get install -y udptunnel")
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "udptunnel"], capture_output=True, timeout=300, check=False
        )
        binary = shutil.which("udptunnel")
    if binary is None:
        return {
            "available": False,
            "reason": "udptunnel is not installed (Debian: apt-get install -y udptunnel; or --install)",
        }
    version = subprocess.run(["dpkg-query", "-W", "udptunnel"], capture_output=True, text=True, check=False)
    return {"available": True, "binary": binary, "package": version.stdout.strip() or None}


def start_udptunnel(lab: Lab) -> list[int]:
    """Server (listening) on the egress host, client (dialing) in the datacenter, like the relay.

    Started afresh for every step, so what one step left in the tunnel cannot slow the next.
    """
    state = lab.state()
    layout = state.layout
    group = f"{UDPTUNNEL_GROUP.group}/{UDPTUNNEL_GROUP.port}"
    server = netns.spawn(
        layout.ns("egress"),
        ["udptunnel", "-s", str(UDPTUNNEL_PORT), f"{group}/4"],
        log=lab.run_dir / "udptunnel-server.log",
        cpus=state.site_cpus("aws"),
    )
    deadline = time.monotonic() + 10
    while not _tcp(layout.ns("egress"), ["-Htln", f"sport = :{UDPTUNNEL_PORT}"]):
        if time.monotonic() > deadline:
            raise LabError("udptunnel server did not listen: " + lab.log_tail("udptunnel-server"))
        time.sleep(0.1)
    client = netns.spawn(
        layout.ns("dc"),
        ["udptunnel", "-c", f"{EGRESS_ADDRESS}/{UDPTUNNEL_PORT}", f"{group}/1"],
        log=lab.run_dir / "udptunnel-client.log",
        cpus=state.site_cpus("datacenter"),
    )
    deadline = time.monotonic() + 10
    while not _tcp(layout.ns("dc"), ["-Htn", "state", "established", f"dport = :{UDPTUNNEL_PORT}"]):
        if time.monotonic() > deadline:
            raise LabError("udptunnel client did not connect: " + lab.log_tail("udptunnel-client"))
        time.sleep(0.1)
    return [server, client]


def wait_relay_drained(lab: Lab, timeout: float = 15.0) -> None:
    """Let the relay finish what an earlier step queued, so it cannot slow the next step."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counters = lab.relay_counters()
        # Nothing left in the ingress's queue (every copy due is out or dropped), and the egress has
        # taken all that went out.
        due = counters.get("ingress.datagrams_due", 0)
        out = counters.get("ingress.datagrams_out", 0)
        if due <= out + counters.get("ingress.drops", 0) and out <= counters.get("egress.datagrams_in", 0):
            return
        time.sleep(0.2)


def _tcp(namespace: str, filters: list[str]) -> bool:
    return bool(netns.in_namespace(namespace, ["ss", *filters], check=False).strip())


def one_step(lab: Lab, path: str, size: SizeRange, rate: int, seconds: float) -> dict[str, Any]:
    count = max(2_000, int(rate * seconds))
    # A path may pause (a loaded machine, a relay draining): IDLE keeps a stream from being cut short.
    common: dict[str, Any] = {"count": count, "rate": rate, "size": size, "receivers": 1, "idle": IDLE}
    if path == "relay":
        wait_relay_drained(lab)
        report = lab.run(path="relay", **common)
    elif path == "direct":
        report = lab.run(path="direct", group=DIRECT_GROUP, **common)
    else:
        tunnel = start_udptunnel(lab)
        try:
            report = lab.stream(origin="datacenter", group=UDPTUNNEL_GROUP, **common)
        finally:
            netns.stop(tunnel)
    (member,) = report.members
    achieved = report.sender.get("achieved_rate") or 0
    step = {
        "target_rate": rate,
        "achieved_send_rate": achieved,
        "sent": report.sender.get("sent"),
        "sender_limited": achieved < rate * SENDER_LIMIT,
        "socket_buffer_drops": report.socket_buffer_drops,
        **({"relay_counters": report.relay} if path == "relay" else {}),
        "non_member_frames": report.frames,
    }
    received = member.report
    if received is None:  # the receiver printed no report: nothing it heard can be counted
        return {**step, "received": 0, "lost": count, "p50_us": None, "p99_us": None, "max_us": None,
                "receiver_problem": member.problem}  # fmt: skip
    return {
        **step,
        "received": received.unique,
        "lost": received.lost,
        "duplicates": received.duplicates,
        "reordered": received.reordered,
        "p50_us": received.latency_us.p50,
        "p99_us": received.latency_us.p99,
        "max_us": received.latency_us.max,
        "receiver_stopped_by": received.stopped_by,
    }


def kept_up(step: dict[str, Any]) -> bool:
    return step["lost"] == 0 and step["p99_us"] is not None and step["p99_us"] <= KEEP_UP_P99_US


def climb(
    step: Callable[[int], dict[str, Any]], rates: Iterable[int], label: str, deadline: float | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None, str]:
    """Step up through ``rates`` (``step(rate)`` runs one) until a step fails twice (loss, or p99
    over KEEP_UP_P99_US), the sender falls short, or ``deadline`` passes. Returns the steps, the
    highest one that passed, and what stopped it. Both benchmarks climb this way."""
    steps: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    stopped_by = "all rates passed"
    for rate in rates:
        if deadline is not None and time.monotonic() > deadline:
            stopped_by = "time budget"
            break
        result = step(rate)
        log(f"{label}  target {rate:>7}/s  sent at {result['achieved_send_rate']:>7}/s  "
            f"lost {result['lost']:>7}  p50/p99 {result['p50_us']}/{result['p99_us']} µs")  # fmt: skip
        if not kept_up(result):
            retry = step(rate)
            log(f"{label}  retry           lost {retry['lost']:>7}  p99 {retry['p99_us']} µs")
            result["retry"] = retry
            if not kept_up(retry):
                steps.append(result)
                stopped_by = f"at {rate}/s: " + (
                    "loss" if retry["lost"] else "p99 over 100 ms (not keeping up)"
                )
                break
            result = {**retry, "first_attempt": {k: result[k] for k in ("lost", "p99_us")}}
        steps.append(result)
        best = result
        if result["sender_limited"]:
            stopped_by = f"sender reached only {result['achieved_send_rate']}/s of {rate}/s"
            break
    return steps, best, stopped_by


def step_up(lab: Lab, path: str, size: SizeRange, seconds: float, deadline: float) -> dict[str, Any]:
    steps, best, stopped_by = climb(
        lambda rate: one_step(lab, path, size, rate, seconds), RATES, f"{path:9} {size!s:>7} B", deadline
    )
    at_latency_rate = next((s for s in steps if s["target_rate"] == LATENCY_RATE), None)
    return {
        "cut_short_by_budget": stopped_by == "time budget",
        # What the sender reached at the highest rate tried: the probe's own limit on this machine.
        "sender_rate_at_highest_step": steps[-1]["achieved_send_rate"] if steps else None,
        # The highest achieved rate delivered with zero loss and p99 <= KEEP_UP_P99_US.
        "max_zero_loss_rate": best["achieved_send_rate"] if best else None,
        "max_zero_loss_target": best["target_rate"] if best else None,
        # What passing cost: a path that queues passes with milliseconds of latency.
        "p99_us_at_max": best["p99_us"] if best else None,
        "stopped_by": stopped_by,
        "latency_at_50k_us": None
        if at_latency_rate is None
        else {key: at_latency_rate[key] for key in ("p50_us", "p99_us", "max_us", "lost")},
        "steps": steps,
    }


def variant_settings(name: str) -> dict[str, bool]:
    """``Lab.up`` keywords of a variant: ``gro|nogro`` and ``split|shared`` (``gro-split``)."""
    gro, _, cpus = name.partition("-")
    if gro not in ("gro", "nogro") or cpus not in ("split", "shared"):
        raise ValueError(f"variant {name!r}: use gro-split, gro-shared, nogro-split or nogro-shared")
    return {"gro": gro == "gro", "shared_cpus": cpus == "shared"}


def variant_list(text: str) -> list[str]:
    """``argparse`` type of ``--variants``: comma-separated variant names."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    try:
        for name in names:
            variant_settings(name)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if not names or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"{text!r}: name each variant once")
    return names


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


# -- summary (pure: the tests call these with hand-made runs) ------------------------------------


def spread(values: Sequence[float | None]) -> dict[str, Any]:
    """Median, min and max of the values measured (``None``: not measured), and how many there were."""
    measured = [value for value in values if value is not None]
    if not measured:
        return {"median": None, "min": None, "max": None, "measured": 0}
    return {
        "median": statistics.median(measured),
        "min": min(measured),
        "max": max(measured),
        "measured": len(measured),
    }


def summarise(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One case (variant, path, size) over its runs, each what :func:`step_up` returned.

    A run where no step passed has no max zero-loss rate: it counts as 0 msg/s (a median that
    left it out would flatter the path) and ``runs_without_passing_step`` counts it. A latency
    a run did not measure (it never reached the 50k step) is left out; ``measured`` says in how many.
    """

    def at_50k(run: dict[str, Any], key: str) -> float | None:
        value: float | None = (run.get("latency_at_50k_us") or {}).get(key)
        return value

    return {
        "runs": len(runs),
        "runs_without_passing_step": sum(1 for run in runs if run["max_zero_loss_rate"] is None),
        "runs_cut_short_by_budget": sum(1 for run in runs if run.get("cut_short_by_budget")),
        "max_zero_loss_rate": spread(
            [0 if run["max_zero_loss_rate"] is None else run["max_zero_loss_rate"] for run in runs]
        ),
        "p50_us_at_50k": spread([at_50k(run, "p50_us") for run in runs]),
        "p99_us_at_50k": spread([at_50k(run, "p99_us") for run in runs]),
        "p99_us_at_max": spread([run["p99_us_at_max"] for run in runs]),
        "sender_rate_at_highest_step": spread([run.get("sender_rate_at_highest_step") for run in runs]),
        "stopped_by": [run["stopped_by"] for run in runs],
    }


def summarise_results(results: dict[str, Any]) -> dict[str, Any]:
    """``results[variant][path][size]`` (lists of runs) -> the same keys, each case summarised."""
    return {
        variant: {
            path: {size: summarise(runs) for size, runs in sizes.items()} for path, sizes in paths.items()
        }
        for variant, paths in results.items()
    }


class Goal(NamedTuple):
    variant: str
    path: str
    size: str
    #: A key of the case's summary; its median is judged.
    metric: str
    #: ">=" or "<="
    comparison: str
    target: float
    text: str


GOALS = (
    *(
        Goal(variant, "relay", size, "max_zero_loss_rate", ">=", GOAL_RELAY_RATE,
             f"relay zero loss at >= {GOAL_RELAY_RATE:,} msg/s")
        for variant in DEFAULT_VARIANTS
        for size in ("64B", "64-512B")
    ),
    *(
        Goal(variant, "relay", size, "p99_us_at_50k", "<=", p99,
             f"relay p99 one-way at {LATENCY_RATE // 1000}k msg/s <= {p99:,.0f} µs")
        for variant, p99 in GOAL_RELAY_P99_US.items()
        for size in ("64B", "64-512B")
    ),
    *(
        Goal(variant, "direct", "64-512B", "sender_rate_at_highest_step", ">=", GOAL_SENDER_RATE,
             f"probe sender reaches >= {GOAL_SENDER_RATE:,} msg/s")
        for variant in DEFAULT_VARIANTS
    ),
)  # fmt: skip


def evaluate_goals(summary: dict[str, Any], goals: Sequence[Goal] = GOALS) -> list[dict[str, Any]]:
    """Each goal judged on the median of its case; ``met`` is ``None`` when the case has no median."""
    judged = []
    for goal in goals:
        case = summary.get(goal.variant, {}).get(goal.path, {}).get(goal.size)
        median = None if case is None else case[goal.metric]["median"]
        met = None
        if median is not None:
            met = median >= goal.target if goal.comparison == ">=" else median <= goal.target
        judged.append(
            {
                "goal": goal.text,
                "variant": goal.variant,
                "path": goal.path,
                "size": goal.size,
                "metric": goal.metric,
                "comparison": goal.comparison,
                "target": goal.target,
                "median": median,
                "met": met,
            }
        )
    return judged


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _range(measured: dict[str, Any]) -> str:
    return f"{_number(measured['min'])}-{_number(measured['max'])}"


def stopped_by_text(stopped_by: Sequence[str]) -> str:
    """``["loss", "loss", "all rates passed"]`` -> ``"loss (2 runs); all rates passed (1 run)"``.

    A sender that fell short is grouped by the target it missed (the rate it reached is in the JSON).
    """
    reasons = [_SENDER_SHORT.sub(r"sender short of \1/s", reason) for reason in stopped_by]
    return "; ".join(
        f"{reason} ({count} run{'' if count == 1 else 's'})" for reason, count in Counter(reasons).items()
    )


_SENDER_SHORT = re.compile(r"^sender reached only \d+/s of (\d+)/s$")


def markdown_table(output: dict[str, Any]) -> str:
    """The README table: one row per variant, path and payload size; then goals, load, command."""
    if "variants" not in output:
        raise ValueError("this JSON has no variants: it is from relay_bench before --repeat/--variants")
    rows = [
        "| variant | path | payload | max zero-loss rate, msg/s: median (range) "
        "| p50 / p99 one-way at 50k msg/s, µs: median (p99 range) | runs: stopped by |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for variant, paths in output.get("summary", {}).items():
        for path, sizes in paths.items():
            for size, case in sizes.items():
                rate = case["max_zero_loss_rate"]
                shown = f"{_number(rate['median'])} ({_range(rate)})"
                if case["runs_without_passing_step"]:
                    shown += f", none passed in {case['runs_without_passing_step']} of {case['runs']} runs"
                p50, p99 = case["p50_us_at_50k"], case["p99_us_at_50k"]
                latency = "-"
                if p99["median"] is not None:
                    latency = f"{_number(p50['median'])} / {_number(p99['median'])} ({_range(p99)})"
                    if p99["measured"] < case["runs"]:
                        latency += f", measured in {p99['measured']} of {case['runs']} runs"
                stopped = stopped_by_text(case["stopped_by"])  # "time budget": cut short by --budget
                rows.append(f"| {variant} | {path} | {size} | {shown} | {latency} | {stopped} |")
    lines = ["\n".join(rows), ""]
    goals = output.get("goals", [])
    if goals:
        lines.append("Goals (issue 12), on the medians:")
        for goal in goals:
            verdict = {True: "met", False: "not met", None: "not measured"}[goal["met"]]
            lines.append(
                f"- {goal['variant']}, {goal['path']} {goal['size']}: {goal['goal']}: {verdict} "
                f"(median {_number(goal['median'])})"
            )
        lines.append("")
    machine = output.get("machine", {})
    variants = output["variants"]
    settings = "; ".join(
        f"{name}: GRO {'on' if lab.get('gro') else 'off'}, CPUs {_cpus_text(lab.get('cpus'))}"
        for name, lab in variants.items()
    )
    lines.append(f"Labs: {settings}.")
    load = machine.get("load_average_at_start")
    if load:
        at_variants = ", ".join(
            f"{name} {lab['load_average_at_start'][0]:.2f}"
            for name, lab in variants.items()
            if lab.get("load_average_at_start")
        )
        at_runs = [
            run["load_average_at_start"][0]
            for paths in output.get("results", {}).values()
            for sizes in paths.values()
            for runs in sizes.values()
            for run in runs
            if run.get("load_average_at_start")
        ]
        text = f"Load average (1 min) at start: {load[0]:.2f} on {machine.get('cpus')} CPUs"
        if at_variants:
            text += f"; at each variant's start: {at_variants}"
        if at_runs:
            text += f"; at the runs' starts: {min(at_runs):.2f}-{max(at_runs):.2f}"
        lines.append(text + ".")
    lines.append(f"Command: `{output.get('command', '?')}`.")
    return "\n".join(lines)


def _cpus_text(cpus: Any) -> str:
    if not isinstance(cpus, dict):
        return str(cpus or "?")
    return " / ".join(f"{site} {','.join(map(str, ids))}" for site, ids in cpus.items())


# -- the run -------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="stream length per step (default 3)")
    parser.add_argument(
        "--budget",
        type=float,
        default=DEFAULT_BUDGET,
        help=f"stop stepping after this many seconds, over all repeats and variants ({DEFAULT_BUDGET:.0f})",
    )
    parser.add_argument(
        "--repeat", type=int, default=DEFAULT_REPEAT, help=f"runs of every case ({DEFAULT_REPEAT})"
    )
    parser.add_argument(
        "--variants",
        type=variant_list,
        default=list(DEFAULT_VARIANTS),
        help=f"comma-separated, each in a lab of its own ({','.join(DEFAULT_VARIANTS)})",
    )
    parser.add_argument("--paths", default="direct,relay,udptunnel", help="comma-separated subset")
    parser.add_argument("--install", action="store_true", help="apt-get install udptunnel when missing")
    parser.add_argument("--table", metavar="JSON", help="print the Markdown table of an earlier run and exit")
    args = parser.parse_args()
    if args.table:
        try:
            print(markdown_table(json.loads(Path(args.table).read_text())))
        except ValueError as err:
            print(f"{args.table}: {err}", file=sys.stderr)
            return 2
        return 0
    if args.repeat < 1:
        parser.error("--repeat: at least 1")

    try:
        netns.check_environment()
    except LabError as err:
        print(json.dumps({"error": str(err)}))
        return 3
    started = time.monotonic()
    deadline = started + args.budget
    output: dict[str, Any] = {
        "command": "python " + shlex.join(sys.argv),
        "options": {
            "repeat": args.repeat,
            "variants": args.variants,
            "paths": args.paths,
            "seconds": args.seconds,
            "budget_seconds": args.budget,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "kernel": platform.release(),
            "python": platform.python_version(),
            "load_average_at_start": load_average(),
        },
        "seconds_per_step": args.seconds,
        "rates": list(RATES),
        "payload_sizes": [f"{size}B" for size in SIZES],
        "keep_up_rule": f"a step passes with zero loss and p99 <= {KEEP_UP_P99_US:.0f} µs; "
        "a failing step is retried once",
        "udptunnel": udptunnel_status(args.install),
        "budget": {"seconds": args.budget, "runs_cut_short": [], "runs_not_started": []},
        "variants": {},
        "results": {},
    }
    paths = [path.strip() for path in args.paths.split(",") if path.strip()]
    if "relay" in paths and not relay_available():
        output["relay"] = {"available": False, "reason": "`mcastkit relay` is not available"}
        paths.remove("relay")
    if "udptunnel" in paths and not output["udptunnel"]["available"]:
        paths.remove("udptunnel")

    lab = Lab(LAB_NAME)
    budget = output["budget"]
    for variant in args.variants:
        settings = variant_settings(variant)
        lab_record: dict[str, Any] = {**settings, "load_average_at_start": load_average()}
        output["variants"][variant] = lab_record
        if time.monotonic() > deadline:
            budget["runs_not_started"].append(f"{variant}: every run")
            continue
        results = output["results"].setdefault(variant, {})
        lab.down()
        try:
            state = lab.up(
                members=1, relay="relay" in paths, gro=settings["gro"], shared_cpus=settings["shared_cpus"]
            )
            lab_record.update(gro=state.gro, cpus=state.cpus or "shared")
            log(f"{variant}: lab up, GRO {'on' if state.gro else 'off'}, CPUs {lab_record['cpus']}")
            for run in range(1, args.repeat + 1):
                for size in SIZES:
                    for path in paths:
                        case = f"{variant} {path} {size}B run {run}"
                        if time.monotonic() > deadline:
                            budget["runs_not_started"].append(case)
                            continue
                        load = load_average()
                        log(f"{case}: load average {load[0]:.2f}")
                        result = step_up(lab, path, size, args.seconds, deadline)
                        if result["cut_short_by_budget"]:
                            budget["runs_cut_short"].append(case)
                        runs = results.setdefault(path, {}).setdefault(f"{size}B", [])
                        runs.append({"run": run, "load_average_at_start": load, **result})
        except LabError as err:
            lab_record["error"] = str(err)
            output.setdefault("errors", []).append(f"{variant}: {err}")
        finally:
            lab.down()

    budget["exhausted"] = bool(budget["runs_cut_short"] or budget["runs_not_started"])
    output["summary"] = summarise_results(output["results"])
    output["goals"] = evaluate_goals(output["summary"])
    output["elapsed_seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(output, indent=2))
    return 0 if "errors" not in output else 1


if __name__ == "__main__":
    sys.exit(main())
