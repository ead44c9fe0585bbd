#!/usr/bin/env python3
"""Overlay benchmark in network namespaces: multicast where the network carries none; prints JSON.

Two hosts (a sender, a receiver) and a stand-in for a VPC: a bridge that forwards unicast and
floods no multicast to any port. Paths, side by side in one run:

- ``direct``: the same two hosts on a second bridge that does carry multicast (the baseline:
  what Python and the kernel deliver with nothing in between);
- ``overlay``: ``mcastkit overlay`` (VXLAN, head-end replication) over the VPC stand-in;
- ``n2n``: Debian's n2n (v1: ``supernode`` on a third host, an ``edge`` on each host; it
  encrypts with twofish, which Debian's build cannot turn off; ``-r`` lets an edge accept frames
  not addressed to its own IP, multicast included: without it, it discards them as "bad
  destination") over the same stand-in.

Before measuring, each path is checked to carry nothing on the VPC stand-in alone: a join on
the receiver's underlay address hears nothing the sender sends there (``underlay_carries``).

For 64 B, 1024 B and 64-512 B (drawn per datagram), each path steps the rate up until a step
loses a datagram (retried once) or p99 goes over 100 ms or the sender cannot reach the target;
the highest lossless achieved rate is reported, with latency p50/p99 of the 10k msg/s step.
``--repeat N`` interleaves N runs of every (size, path); the summary takes medians, and the
ratios overlay/direct and overlay/n2n per size.

Run as root on an otherwise idle machine::

    python bench/overlay_bench.py --install > bench/out/overlay.json
    python bench/overlay_bench.py --table bench/out/overlay.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from relay_bench import SENDER_LIMIT, kept_up  # one rule for a step that passes, in both benchmarks

from mcastkit.lab import netns
from mcastkit.lab.topology import joined_locally
from mcastkit.net.addresses import GroupPort
from mcastkit.probe.wire import SizeRange

RATES = (1_000, 5_000, 10_000, 25_000, 50_000, 75_000, 100_000, 150_000, 200_000, 250_000, 300_000, 400_000)
SIZES = (SizeRange(64, 64), SizeRange(1024, 1024), SizeRange(64, 512))
PATHS = ("direct", "overlay", "n2n")
LATENCY_RATE = 10_000
SECONDS = 2.0
GROUP = GroupPort("239.66.1.1", 46001)
PREFIX = "mckob"
#: host -> (VPC stand-in address, multicast LAN address, overlay address, n2n address)
HOSTS = {
    "a": ("10.88.0.1", "10.87.0.1", "10.99.0.1", "10.66.0.1"),
    "b": ("10.88.0.2", "10.87.0.2", "10.99.0.2", "10.66.0.2"),
}
SUPERNODE = ("sn", "10.88.0.9", 7654)
PATH_ADDRESS = {"direct": 1, "overlay": 2, "n2n": 3}
OVERLAY = f"""overlays:
  - name: bench
    vni: 4343
    cidr: 10.99.0.0/24
    groups: [{GROUP}]
    hosts:
      - {{name: a, underlay: {HOSTS["a"][0]}, address: {HOSTS["a"][2]}}}
      - {{name: b, underlay: {HOSTS["b"][0]}, address: {HOSTS["b"][2]}}}
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ns(name: str) -> str:
    return f"{PREFIX}-{name}"


def ip(*args: str) -> None:
    netns.ip(*args)


@contextmanager
def topology(workdir: Path) -> Iterator[list[int]]:
    """The namespaces, both bridges, the overlay and n2n; yields the daemons' pids."""
    names = [ns(n) for n in ("sw", "a", "b", SUPERNODE[0])]
    pids: list[int] = []
    for name in names:
        netns.ip("netns", "add", name)
        netns.ip("link", "set", "lo", "up", namespace=name)
    try:
        sw = ns("sw")
        netns.ip("link", "add", "vpc", "type", "bridge", "mcast_snooping", "0", namespace=sw)
        netns.ip("link", "add", "lan", "type", "bridge", "mcast_snooping", "0", namespace=sw)
        for bridge in ("vpc", "lan"):
            netns.ip("link", "set", bridge, "up", namespace=sw)
        hosts = {**{h: (a[0], a[1]) for h, a in HOSTS.items()}, SUPERNODE[0]: (SUPERNODE[1], None)}
        for host, (vpc_address, lan_address) in hosts.items():
            for device, bridge, address in (("eth0", "vpc", vpc_address), ("eth1", "lan", lan_address)):
                if address is None:
                    continue
                port = f"{host}{device}"
                netns.ip(
                    "link",
                    "add",
                    device,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    port,
                    "netns",
                    sw,
                    namespace=ns(host),
                )
                netns.ip("address", "add", f"{address}/24", "dev", device, namespace=ns(host))
                netns.ip("link", "set", device, "up", namespace=ns(host))
                netns.ip("link", "set", port, "master", bridge, "up", namespace=sw)
                if bridge == "vpc":  # a VPC carries no multicast
                    netns.ip(
                        "link", "set", "dev", port, "type", "bridge_slave", "mcast_flood", "off", namespace=sw
                    )
        overlay_file = workdir / "overlay.yaml"
        overlay_file.write_text(OVERLAY)
        for host in HOSTS:
            for key in ("all", "default"):
                netns.in_namespace(ns(host), ["sysctl", "-qw", f"net.ipv4.conf.{key}.force_igmp_version=2"])
            netns.in_namespace(
                ns(host), netns.mcastkit_command("overlay", "up", "--file", str(overlay_file), "--host", host)
            )
        pids.append(
            netns.spawn(ns(SUPERNODE[0]), ["supernode", "-l", str(SUPERNODE[2])], log=workdir / "sn.log")
        )
        for host, addresses in HOSTS.items():
            edge = ["edge", "-d", "n2n0", "-a", addresses[3], "-c", "mckbench", "-k", "mckbench",
                    "-l", f"{SUPERNODE[1]}:{SUPERNODE[2]}", "-M", "1400", "-r"]  # fmt: skip
            pids.append(netns.spawn(ns(host), edge, log=workdir / f"edge-{host}.log"))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            up = [_has_address(ns(h), "n2n0", HOSTS[h][3]) for h in HOSTS]
            if all(up):
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("n2n edges did not come up: " + (workdir / "edge-a.log").read_text()[-500:])
        for host in HOSTS:
            # Routes for the group by each path's device are chosen per run with --interface.
            netns.in_namespace(ns(host), ["sysctl", "-qw", "net.ipv4.conf.n2n0.force_igmp_version=2"])
        time.sleep(2)  # n2n: edges learn each other through the supernode
        yield pids
    finally:
        netns.stop(pids)
        for name in names:
            netns.ip("netns", "delete", name, check=False)


def _has_address(namespace: str, device: str, address: str) -> bool:
    out = netns.in_namespace(namespace, ["ip", "-4", "-o", "address", "show", "dev", device], check=False)
    return address in out


def one_step(path: str, size: SizeRange, rate: int, workdir: Path, *, group: GroupPort = GROUP,
             via: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Send ``rate``/s for SECONDS on ``path`` (or from ``via``: "underlay" for the control)."""
    column = 0 if via == "underlay" else PATH_ADDRESS[path]
    sender, receiver = HOSTS["a"][column], HOSTS["b"][column]
    count = max(2_000, int(rate * SECONDS))
    out = workdir / "recv.out"
    out.unlink(missing_ok=True)
    listen = SECONDS * 3 + 10
    pid = netns.spawn(
        ns("b"),
        netns.mcastkit_command(
            "probe", "recv", "--group", str(group), "--interface", receiver, "--count", str(count),
            "--timeout", f"{listen:.0f}", "--idle", "2", "--max-loss", "1", "--json",
        ),
        log=out,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not joined_locally(ns("b"), group.group):
        time.sleep(0.05)
    time.sleep(0.3)
    sent = netns.in_namespace(
        ns("a"),
        netns.mcastkit_command(
            "probe", "send", "--group", str(group), "--interface", sender, "--rate", str(rate),
            "--count", str(count), "--size", str(size), "--ttl", "2", "--json",
        ),
        timeout=SECONDS * 4 + 30,
    )  # fmt: skip
    netns.wait_exit([pid], listen + 5)
    netns.stop([pid])
    report = _last_json(out.read_text()) or {}
    achieved = (_last_json(sent) or {}).get("achieved_rate") or 0
    latency = report.get("latency_us") or {}
    return {
        "target_rate": rate,
        "achieved_send_rate": achieved,
        "sender_limited": achieved < rate * SENDER_LIMIT,
        "received": report.get("unique", 0),
        "lost": report.get("lost", count),
        "p50_us": latency.get("p50"),
        "p99_us": latency.get("p99"),
    }


def _last_json(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def step_up(path: str, size: SizeRange, workdir: Path, rates: tuple[int, ...] = RATES) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    stopped_by = "all rates passed"
    for rate in rates:
        result = one_step(path, size, rate, workdir)
        log(f"{path:8} {size!s:>7} B target {rate:>7}/s sent {result['achieved_send_rate']:>7}/s "
            f"lost {result['lost']:>7} p50/p99 {result['p50_us']}/{result['p99_us']} µs")  # fmt: skip
        if not kept_up(result):
            retry = one_step(path, size, rate, workdir)
            result["retry"] = retry
            if not kept_up(retry):
                steps.append(result)
                stopped_by = f"at {rate}/s: " + ("loss" if retry["lost"] else "p99 over 100 ms")
                break
            result = {**retry, "first_attempt": {k: result[k] for k in ("lost", "p99_us")}}
        steps.append(result)
        best = result
        if result["sender_limited"]:
            stopped_by = f"sender reached only {result['achieved_send_rate']}/s of {rate}/s"
            break
    at_latency = next((s for s in steps if s["target_rate"] == LATENCY_RATE), None)
    return {
        "max_zero_loss_rate": best["achieved_send_rate"] if best else 0,
        # "all rates passed": the top of the ladder, not the path's limit; "sender reached only":
        # the probe sender's own limit on this host, through this path's send side.
        "stopped_by": stopped_by,
        "latency_at_10k_us": None
        if at_latency is None
        else {k: at_latency[k] for k in ("p50_us", "p99_us", "lost")},
        "steps": steps,
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for size in SIZES:
        row: dict[str, Any] = {}
        for path in PATHS:
            mine = [r for r in runs if r["path"] == path and r["size"] == str(size)]
            rates = [r["max_zero_loss_rate"] for r in mine]
            p99 = [r["latency_at_10k_us"]["p99_us"] for r in mine if r["latency_at_10k_us"]]
            p50 = [r["latency_at_10k_us"]["p50_us"] for r in mine if r["latency_at_10k_us"]]
            row[path] = {
                "max_zero_loss_rate_median": statistics.median(rates) if rates else None,
                "max_zero_loss_rate_range": [min(rates), max(rates)] if rates else None,
                "p50_us_at_10k_median": statistics.median(p50) if p50 else None,
                "p99_us_at_10k_median": statistics.median(p99) if p99 else None,
            }
        rate = {p: row[p]["max_zero_loss_rate_median"] or 0 for p in PATHS}
        row["overlay_over_direct"] = round(rate["overlay"] / rate["direct"], 2) if rate["direct"] else None
        row["overlay_over_n2n"] = round(rate["overlay"] / rate["n2n"], 1) if rate["n2n"] else None
        table[str(size)] = row
    goals = {
        "overlay >= 90% of direct on every row": all(
            (row["overlay_over_direct"] or 0) >= 0.9 for row in table.values()
        ),
        "overlay ahead of n2n on every row": all(
            row["overlay_over_n2n"] is None or row["overlay_over_n2n"] > 1 for row in table.values()
        ),
    }
    return {"table": table, "goals": goals}


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def render(results: dict[str, Any]) -> str:
    lines = [
        "| size | direct max zero-loss msg/s | overlay | n2n | overlay/direct | overlay/n2n "
        "| p50/p99 µs at 10k: direct | overlay | n2n |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for size, row in results["summary"]["table"].items():
        rates = [f"{row[p]['max_zero_loss_rate_median'] or 0:,.0f}" for p in PATHS]
        latency = [
            f"{_us(row[p]['p50_us_at_10k_median'])}/{_us(row[p]['p99_us_at_10k_median'])}" for p in PATHS
        ]
        lines.append(f"| {size} B | {' | '.join(rates)} | {row['overlay_over_direct']} | "
                     f"{row['overlay_over_n2n']} | {' | '.join(latency)} |")  # fmt: skip
    lines.append("")
    lines.append(f"goals: {json.dumps(results['summary']['goals'])}; load average at start "
                 f"{results['load_average']}; repeats {results['repeat']}")  # fmt: skip
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--install", action="store_true", help="apt-get install n2n when missing")
    parser.add_argument("--table", metavar="JSON", help="print the README table of an earlier run")
    parser.add_argument("--rates", help="comma-separated rates to step through (default: the full ladder)")
    args = parser.parse_args()
    if args.table:
        print(render(json.loads(Path(args.table).read_text())))
        return 0
    if os.geteuid() != 0:
        sys.exit("overlay_bench: run as root (network namespaces)")
    if shutil.which("edge") is None and args.install:
        subprocess.run(["apt-get", "install", "-y", "-qq", "n2n"], capture_output=True, check=False)
    if shutil.which("edge") is None or shutil.which("supernode") is None:
        sys.exit("overlay_bench: n2n is not installed (apt-get install -y n2n, or --install)")
    version = subprocess.run(
        ["dpkg-query", "-W", "n2n"], capture_output=True, text=True, check=False
    ).stdout.strip()
    rates = tuple(int(r) for r in args.rates.split(",")) if args.rates else RATES
    results: dict[str, Any] = {"load_average": [round(x, 2) for x in os.getloadavg()], "repeat": args.repeat,
                               "n2n": version, "cpus": os.cpu_count(), "runs": []}  # fmt: skip
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mckob-")))
        stack.enter_context(topology(workdir))
        control = one_step("direct", SIZES[0], 1_000, workdir, via="underlay")
        results["underlay_carries"] = control["received"]
        if control["received"]:
            sys.exit(f"overlay_bench: the VPC stand-in carried {control['received']} multicast datagrams")
        for repeat in range(args.repeat):
            for size in SIZES:
                for path in PATHS:
                    run = step_up(path, size, workdir, rates)
                    results["runs"].append({"repeat": repeat, "path": path, "size": str(size), **run})
    results["summary"] = summarise(results["runs"])
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
