#!/usr/bin/env python3
"""Relay benchmark in the network-namespace lab; prints JSON (not a test).

In one run, over the same namespaces, links and bridge:

- ``direct``: probe sender on the AWS segment -> receiver (the baseline: what Python and the
  kernel deliver with no relay at all; it bounds what any relayed path can show here);
- ``relay``: datacenter source -> mcastkit ingress -> TCP over the routed link -> egress -> receiver;
- ``udptunnel``: the same path with Debian's ``udptunnel`` (C, multicast mode) instead of the relay.

For 64 and 1024-byte datagrams, and for sizes drawn per datagram from 64-512 bytes (a feed's
messages vary, so the egress finds few runs of equal size to send as one GSO message), each
path steps the rate up until a step loses a datagram or does not keep up (a failing step is
retried once) or the sender cannot reach the target; the highest lossless *achieved* rate is
reported, with one-way latency p50/p99 of the 50k msg/s step.
Goals (issue 3): relay >= 200k msg/s of 64-byte datagrams with zero loss; p99 <= 0.5 ms at 50k/s.
The lab gives the datacenter site and the AWS site half of the CPUs each, as two hosts;
``--shared-cpus`` lets every process run on any CPU instead.

Run as root:  python bench/relay_bench.py > bench/out/relay.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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
GOAL_RATE = 200_000
GOAL_P99_US = 500.0


def log(message: str) -> None:
    print(f"[relay_bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


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


def step_up(lab: Lab, path: str, size: SizeRange, seconds: float, deadline: float) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    stopped_by = "all rates passed"
    for rate in RATES:
        if time.monotonic() > deadline:
            stopped_by = "time budget"
            break
        result = one_step(lab, path, size, rate, seconds)
        log(f"{path:9} {size!s:>7} B  target {rate:>7}/s  sent at {result['achieved_send_rate']:>7}/s  "
            f"lost {result['lost']:>7}  p50/p99 {result['p50_us']}/{result['p99_us']} µs")  # fmt: skip
        if not kept_up(result):
            retry = one_step(lab, path, size, rate, seconds)
            log(f"{path:9} {size!s:>7} B  retry           lost {retry['lost']:>7}  p99 {retry['p99_us']} µs")
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
    at_latency_rate = next((s for s in steps if s["target_rate"] == LATENCY_RATE), None)
    return {
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


def markdown_table(output: dict[str, Any]) -> str:
    """The README table: one row per path and payload size."""
    rows = [
        "| path | payload | max zero-loss rate (msg/s) | p99 at that rate (µs) "
        "| p50 / p99 one-way at 50k msg/s (µs) | stopped by |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for path, sizes in output.get("summary", {}).items():
        for size, result in sizes.items():
            rate = result["max_zero_loss_rate"]
            p50, p99 = result["p50_us_at_50k"], result["p99_us_at_50k"]
            latency = "-" if p50 is None else f"{p50:,.0f} / {p99:,.0f}"
            shown = "none" if rate is None else f"{rate:,}"
            at_max = "-" if result.get("p99_us_at_max") is None else f"{result['p99_us_at_max']:,.0f}"
            rows.append(f"| {path} | {size} | {shown} | {at_max} | {latency} | {result['stopped_by']} |")
    machine = output.get("machine", {})
    if machine.get("load_average_at_start"):
        load = machine["load_average_at_start"][0]
        rows.append(f"\nLoad average at start: {load:.1f} on {machine['cpus']} CPUs.")
    if machine.get("lab_cpus"):
        rows.append(f"Lab CPUs: {machine['lab_cpus']}.")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="stream length per step (default 3)")
    parser.add_argument("--budget", type=float, default=900.0, help="stop stepping after this many seconds")
    parser.add_argument("--paths", default="direct,relay,udptunnel", help="comma-separated subset")
    parser.add_argument("--install", action="store_true", help="apt-get install udptunnel when missing")
    parser.add_argument(
        "--shared-cpus", action="store_true", help="every process on any CPU (default: one half per site)"
    )
    parser.add_argument("--table", metavar="JSON", help="print the Markdown table of an earlier run and exit")
    args = parser.parse_args()
    if args.table:
        print(markdown_table(json.loads(Path(args.table).read_text())))
        return 0

    try:
        netns.check_environment()
    except LabError as err:
        print(json.dumps({"error": str(err)}))
        return 3
    started = time.monotonic()
    deadline = started + args.budget
    output: dict[str, Any] = {
        "command": "python " + " ".join(sys.argv),
        "machine": {
            "cpus": os.cpu_count(),
            "kernel": platform.release(),
            "python": platform.python_version(),
            "load_average_at_start": os.getloadavg(),
        },
        "seconds_per_step": args.seconds,
        "payload_sizes": [str(size) for size in SIZES],
        "goals": {"relay_64B_zero_loss_rate": GOAL_RATE, "p99_us_at_50k": GOAL_P99_US},
        "keep_up_rule": f"a step passes with zero loss and p99 <= {KEEP_UP_P99_US:.0f} µs; "
        "a failing step is retried once",
        "udptunnel": udptunnel_status(args.install),
        "results": {},
    }
    paths = [path.strip() for path in args.paths.split(",") if path.strip()]
    if "relay" in paths and not relay_available():
        output["relay"] = {"available": False, "reason": "`mcastkit relay` is not available"}
        paths.remove("relay")
    if "udptunnel" in paths and not output["udptunnel"]["available"]:
        paths.remove("udptunnel")

    lab = Lab(LAB_NAME)
    lab.down()
    try:
        output["machine"]["lab_cpus"] = (
            lab.up(members=1, relay="relay" in paths, shared_cpus=args.shared_cpus).cpus or "shared"
        )
        for size in SIZES:
            for path in paths:
                output["results"].setdefault(path, {})[f"{size}B"] = step_up(
                    lab, path, size, args.seconds, deadline
                )
    except LabError as err:
        output["error"] = str(err)
    finally:
        lab.down()

    relay = output["results"].get("relay", {}).get("64B")
    if relay:
        latency = relay["latency_at_50k_us"] or {}
        output["goals"]["relay_64B_zero_loss_rate_met"] = (relay["max_zero_loss_rate"] or 0) >= GOAL_RATE
        output["goals"]["relay_p99_at_50k_met"] = (latency.get("p99_us") or float("inf")) <= GOAL_P99_US
    output["summary"] = {
        path: {
            size: {
                "max_zero_loss_rate": result["max_zero_loss_rate"],
                "p99_us_at_max": result["p99_us_at_max"],
                "p50_us_at_50k": (result["latency_at_50k_us"] or {}).get("p50_us"),
                "p99_us_at_50k": (result["latency_at_50k_us"] or {}).get("p99_us"),
                "stopped_by": result["stopped_by"],
            }
            for size, result in sizes.items()
        }
        for path, sizes in output["results"].items()
    }
    output["elapsed_seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(output, indent=2))
    return 0 if "error" not in output else 1


if __name__ == "__main__":
    sys.exit(main())
