#!/usr/bin/env python3
"""Multicast between two hosts whose network carries none, five ways, in network namespaces; prints JSON.

Two hosts, ``a`` (the sender) and ``b`` (the receiver), and a stand-in for a VPC: a bridge that
forwards unicast and floods no multicast to any port. Paths, side by side in one run:

- ``direct``: the same two hosts on a second bridge that does carry multicast (the baseline:
  what Python and the kernel deliver with nothing in between);
- ``relay``: mcastkit's relay: ``relay ingress`` on ``a`` reads the sender's datagrams, TCP
  across the VPC stand-in, ``relay egress`` on ``b`` emits them for the receiver;
- ``udptunnel``: Debian's ``udptunnel`` (C) the same way, except that its server runs on ``ut``,
  a host next to ``b`` with a link of its own to it: udptunnel turns multicast loopback off, so
  it cannot deliver to a member on its own host (its man page). Its server (1.1) sends a frame
  it read from TCP only once more data has come in after it, so every stream's last few
  datagrams stay in it: the pass rule counts them lost;
- ``overlay``: ``mcastkit overlay`` (VXLAN, head-end replication) over the VPC stand-in;
- ``overlay-wg``: the same inside WireGuard (``wireguard:`` in the overlay): wireguard-go, the
  user-space WireGuard a host without the kernel's runs (this kernel has no WireGuard; each host
  gets its own ``/run/wireguard``, where wireguard-go keeps its control socket). Encrypted like
  n2n, so ``overlay-wg/n2n`` compares like with like; EC2's kernel WireGuard is not measured;
- ``n2n``: Debian's n2n (v1: ``supernode`` on a host ``sn``, an ``edge`` on each host; it
  encrypts with twofish, which Debian's build cannot turn off; ``-r`` lets an edge accept frames
  not addressed to its own IP, multicast included: without it, it discards them as "bad
  destination") over the same stand-in.

Each path has a group of its own, sent and received on interfaces that only that path joins:
the LAN for ``direct``, each host's overlay or n2n device, and for the relays each host's own
segment (``mc0`` on ``a`` and ``b``, ``b``'s link to ``ut``), which no bridge joins to the other
host. Controls before measuring (``controls`` in the JSON, each must be 0): a join on ``b``'s
underlay address hears nothing ``a`` sends there, and the relays' segments hear nothing while
no relay runs. The relay and udptunnel are started afresh for every step, so what one step left
queued cannot slow the next. The bridges run no iptables on what they forward (a network does
not), as in the lab.

Placement, the same for every path: ``a``'s processes (sender, relay ingress, udptunnel client,
n2n edge) run on one half of the CPUs, ``b``'s and ``ut``'s (receiver, relay egress, udptunnel
server, n2n edge) on the other, as on two machines; the supernode on any. Sender and receiver
are the same ``mcastkit probe`` with the same socket buffers on every path. What the kernel
does for a datagram up to ``b``'s socket runs where a veth delivers it, in the sending CPU's
softirq: on the kernel paths (direct, overlay) the sender's CPU also pays for ``b``'s stack,
the overlay's decapsulation included. Receive steering (RPS) to ``b``'s CPUs would split that
as two machines do, but on the 2-CPU VM it was tried on it made every path slower and noisier.

For 64 B, 1024 B and 64-512 B (drawn per datagram), each path steps the rate up until a step
loses a datagram (retried once) or p99 goes over 100 ms or the sender cannot reach the target
(the rule and ``SENDER_LIMIT`` of bench/relay_bench.py); the highest lossless achieved rate is
reported, with latency p50/p99 of the 10k msg/s step. ``--repeat N`` interleaves N runs of
every (size, path); the summary takes medians, and per size the ratio of each path to direct
and of the overlay to n2n. Goals (issue 16): the overlay at >= 90% of direct, and ahead of n2n,
on every row. ``--paths``, ``--sizes`` and ``--rates`` choose a subset (a smoke run).

Run as root on an otherwise idle machine (2 repeats: about 40 minutes on 2 CPUs, estimated)::

    python bench/overlay_bench.py --install > bench/out/overlay.json
    python bench/overlay_bench.py --table bench/out/overlay.json
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Any

# Shared with the relay benchmark: the climb up the rates (and the rule a step passes by), the
# spread of runs, udptunnel's port and install, and the look at a TCP socket's state.
from relay_bench import SENDER_LIMIT, UDPTUNNEL_PORT, _tcp, climb, spread, udptunnel_status

from mcastkit.commands.args import size_range
from mcastkit.lab import netns
from mcastkit.lab.session import RELAY_PORT, split_cpus
from mcastkit.lab.topology import joined_locally
from mcastkit.net.addresses import GroupPort
from mcastkit.probe.sender import new_stream_id
from mcastkit.probe.wire import SizeRange

RATES = (1_000, 5_000, 10_000, 25_000, 50_000, 75_000, 100_000, 150_000, 200_000, 250_000, 300_000, 400_000)
SIZES = (SizeRange(64, 64), SizeRange(1024, 1024), SizeRange(64, 512))
PATHS = ("direct", "relay", "udptunnel", "overlay", "overlay-wg", "n2n")
RATIOS = ("overlay/direct", "overlay/n2n", "overlay-wg/n2n", "relay/direct")
LATENCY_RATE = 10_000
SECONDS = 2.0
#: A group per path: a receiver cannot count a copy that came by another path.
GROUPS = {path: GroupPort(f"239.66.1.{n}", 46000 + n) for n, path in enumerate(PATHS, 1)}
PREFIX = "mckob"
#: Addresses on the VPC stand-in (eth0); ut runs udptunnel's server for b, sn n2n's supernode.
VPC = {"a": "10.88.0.1", "b": "10.88.0.2", "ut": "10.88.0.3", "sn": "10.88.0.9"}
LAN = {"a": "10.87.0.1", "b": "10.87.0.2"}  # the bridge that carries multicast (eth1)
OVERLAY_ADDRESS = {"a": "10.99.0.1", "b": "10.99.0.2"}
WIREGUARD_OVERLAY_ADDRESS = {"a": "10.97.0.1", "b": "10.97.0.2"}
N2N_ADDRESS = {"a": "10.66.0.1", "b": "10.66.0.2"}
#: Each host's own multicast segment, where the relay ingress and udptunnel's client read the
#: sender and the relay egress writes for the receiver: a TAP device that no process reads
#: (this kernel has no dummy device). It has multicast on, the probe sender's and the egress's
#: loopback copies reach the host's own members, and what it transmits is dropped: the copies
#: cross to the other host only by the relay. The LAN would not do (b's receiver would hear a's
#: sender directly, and an egress's output would reach the ingress again), nor would the VPC
#: stand-in (every datagram would also cost a veth and a bridge hop that goes nowhere).
LOCAL = {"a": "10.55.1.1", "b": "10.55.2.1"}
#: b's link to ut: udptunnel's server sends without loopback, so it needs a host next to b.
UT_LINK = {"b": "10.55.3.1", "ut": "10.55.3.2"}
SUPERNODE_PORT = 7654
#: path -> (the sender's interface address on a, the receiver's on b); "underlay": the control.
ENDS = {
    "direct": (LAN["a"], LAN["b"]),
    "relay": (LOCAL["a"], LOCAL["b"]),
    "udptunnel": (LOCAL["a"], UT_LINK["b"]),
    "overlay": (OVERLAY_ADDRESS["a"], OVERLAY_ADDRESS["b"]),
    "overlay-wg": (WIREGUARD_OVERLAY_ADDRESS["a"], WIREGUARD_OVERLAY_ADDRESS["b"]),
    "n2n": (N2N_ADDRESS["a"], N2N_ADDRESS["b"]),
    "underlay": (VPC["a"], VPC["b"]),
}
#: The CPUs each host's processes run on: a and b get half each, as two machines; ut stands
#: next to b, on b's; the supernode on any (None: a single CPU, nothing to split).
_SITES = split_cpus(os.sched_getaffinity(0))
CPUS = {"a": _SITES.get("datacenter"), "b": _SITES.get("aws"), "ut": _SITES.get("aws"), "sn": None}
OVERLAY = f"""overlays:
  - name: bench
    vni: 4343
    cidr: 10.99.0.0/24
    groups: [{GROUPS["overlay"]}]
    hosts:
      - {{name: a, underlay: {VPC["a"]}, address: {OVERLAY_ADDRESS["a"]}}}
      - {{name: b, underlay: {VPC["b"]}, address: {OVERLAY_ADDRESS["b"]}}}
  - name: benchwg
    vni: 4344
    port: 4790
    cidr: 10.97.0.0/24
    mtu: 1390
    wireguard: {{cidr: 10.96.0.0/24}}
    groups: [{GROUPS["overlay-wg"]}]
    hosts:
      - {{name: a, underlay: {VPC["a"]}, address: {WIREGUARD_OVERLAY_ADDRESS["a"]}, public_key: KEY_a}}
      - {{name: b, underlay: {VPC["b"]}, address: {WIREGUARD_OVERLAY_ADDRESS["b"]}, public_key: KEY_b}}
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ns(host: str) -> str:
    return f"{PREFIX}-{host}"


def _wait(ready: Callable[[], bool], seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-500:] if path.exists() else "(no log)"


def _veth(host: str, device: str, address: str, peer_host: str, peer: str, peer_address: str = "") -> None:
    netns.ip("link", "add", device, "type", "veth", "peer", "name", peer, "netns", ns(peer_host),
             namespace=ns(host))  # fmt: skip
    _nic(host, device, address)
    if peer_address:
        _nic(peer_host, peer, peer_address)


def _nic(host: str, device: str, address: str) -> None:
    netns.ip("address", "add", f"{address}/24", "dev", device, namespace=ns(host))
    netns.ip("link", "set", device, "up", namespace=ns(host))


@contextmanager
def topology(workdir: Path, paths: Collection[str]) -> Iterator[None]:
    """The namespaces, both bridges, the hosts' own segments, the overlay and (when measured) n2n."""
    names = [ns(host) for host in ("sw", *VPC)]
    pids: list[int] = []
    for name in names:
        netns.ip("netns", "add", name)
        netns.ip("link", "set", "lo", "up", namespace=name)
    try:
        sw = ns("sw")
        for bridge, device, addresses in (("vpc", "eth0", VPC), ("lan", "eth1", LAN)):
            netns.ip("link", "add", bridge, "type", "bridge", "mcast_snooping", "0", namespace=sw)
            netns.ip("link", "set", bridge, "up", namespace=sw)
            for host, address in addresses.items():
                port = f"{host}{device}"
                _veth(host, device, address, "sw", port)
                netns.ip("link", "set", port, "master", bridge, "up", namespace=sw)
                if bridge == "vpc":  # a VPC carries no multicast
                    netns.ip(
                        "link", "set", "dev", port, "type", "bridge_slave", "mcast_flood", "off", namespace=sw
                    )
        # The bridges stand for networks, which run no iptables on what they forward (as in the lab).
        for table in ("iptables", "ip6tables", "arptables"):
            netns.in_namespace(sw, ["sysctl", "-qw", f"net.bridge.bridge-nf-call-{table}=0"], check=False)
        _veth("b", "ut0", UT_LINK["b"], "ut", "eth1", UT_LINK["ut"])
        for host, address in LOCAL.items():
            netns.ip("tuntap", "add", "dev", "mc0", "mode", "tap", namespace=ns(host))
            _nic(host, "mc0", address)
        # udptunnel joins and sends by the route to its group.
        udptunnel = f"{GROUPS['udptunnel'].group}/32"
        netns.ip("route", "add", udptunnel, "dev", "mc0", namespace=ns("a"))
        netns.ip("route", "add", udptunnel, "dev", "eth1", namespace=ns("ut"))
        secret = workdir / "relay.secret"
        secret.touch(mode=0o600)
        secret.write_text(secrets.token_hex(32) + "\n")
        overlay_file = workdir / "overlay.yaml"
        overlay_file.write_text(OVERLAY.replace("KEY_a", "A" * 43 + "=").replace("KEY_b", "A" * 42 + "E="))
        keys = {host: _overlay(workdir, host, "key", "--name", "benchwg").strip() for host in ("a", "b")}
        overlay_file.write_text(OVERLAY.replace("KEY_a", keys["a"]).replace("KEY_b", keys["b"]))
        for host in ("a", "b"):
            for key in ("all", "default"):
                netns.in_namespace(ns(host), ["sysctl", "-qw", f"net.ipv4.conf.{key}.force_igmp_version=2"])
            for name in ("bench", "benchwg"):
                _overlay(workdir, host, "up", "--name", name)
        if "n2n" in paths:
            pids.extend(start_n2n(workdir))
        yield
    finally:
        netns.stop(pids)
        for name in names:
            netns.ip("netns", "delete", name, check=False)


def _overlay(workdir: Path, host: str, action: str, *args: str) -> str:
    """``mcastkit overlay ACTION`` on ``host`` (on its CPUs, which wireguard-go inherits), with the
    host's own /run/wireguard and key directory: the namespaces share one file system."""
    run_dir, key_dir = workdir / f"run-{host}", workdir / f"keys-{host}"
    run_dir.mkdir(exist_ok=True)
    Path("/run/wireguard").mkdir(mode=0o700, exist_ok=True)
    command = netns.mcastkit_command(
        "overlay", action, "--file", str(workdir / "overlay.yaml"), "--host", host, *args,
        *(["--key-dir", str(key_dir)] if action in ("key", "up") else []),
    )  # fmt: skip
    private_run = 'mount --bind "$0" /run/wireguard && exec "$@"'
    wrapped = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        private_run,
        str(run_dir),
        *command,
    ]
    return netns.in_namespace(ns(host), wrapped, cpus=CPUS[host])


def start_n2n(workdir: Path) -> list[int]:
    pids = [netns.spawn(ns("sn"), ["supernode", "-l", str(SUPERNODE_PORT)], log=workdir / "sn.log")]
    for host, address in N2N_ADDRESS.items():
        edge = ["edge", "-d", "n2n0", "-a", address, "-c", "mckbench", "-k", "mckbench",
                "-l", f"{VPC['sn']}:{SUPERNODE_PORT}", "-M", "1400", "-r"]  # fmt: skip
        pids.append(netns.spawn(ns(host), edge, log=workdir / f"edge-{host}.log", cpus=CPUS[host]))
    if not _wait(lambda: all(_has_address(ns(h), "n2n0", a) for h, a in N2N_ADDRESS.items())):
        netns.stop(pids)
        raise RuntimeError("n2n edges did not come up: " + _tail(workdir / "edge-a.log"))
    for host in N2N_ADDRESS:
        netns.in_namespace(ns(host), ["sysctl", "-qw", "net.ipv4.conf.n2n0.force_igmp_version=2"])
    time.sleep(2)  # n2n: edges learn each other through the supernode
    return pids


def _has_address(namespace: str, device: str, address: str) -> bool:
    out = netns.in_namespace(namespace, ["ip", "-4", "-o", "address", "show", "dev", device], check=False)
    return address in out


@contextmanager
def carrier(path: str, workdir: Path) -> Iterator[None]:
    """The relay's or udptunnel's two ends, up for one step: the server (on b, or ut) listening,
    then the client on a dialing it, joined and forwarding. Other paths need nothing per step."""
    if path not in ("relay", "udptunnel"):
        yield
        return
    group = GROUPS[path]
    if path == "relay":
        port, secret = RELAY_PORT, ["--secret-file", str(workdir / "relay.secret")]
        server_host, server = "b", netns.mcastkit_command(
            "relay", "egress", "--listen", f"{VPC['b']}:{port}", "--interface", LOCAL["b"], "--ttl", "1",
            "--allow", str(group), *secret,
        )  # fmt: skip
        client = netns.mcastkit_command(
            "relay", "ingress", "--connect", f"{VPC['b']}:{port}", "--interface", LOCAL["a"],
            "--group", str(group), *secret,
        )  # fmt: skip
    else:
        port, where = UDPTUNNEL_PORT, f"{group.group}/{group.port}/1"
        server_host, server = "ut", ["udptunnel", "-s", str(port), where]
        client = ["udptunnel", "-c", f"{VPC['ut']}/{port}", where]
    server_log, client_log = (workdir / f"{path}-{end}.log" for end in ("server", "client"))
    for file in (server_log, client_log):
        file.unlink(missing_ok=True)  # this step's lines only: the client's say when it forwards

    def forwarding() -> bool:
        if path == "relay":  # the ingress says so once the egress has taken the live stream
            return "takes the stream from now on" in client_log.read_text(errors="replace")
        established = _tcp(ns("a"), ["-Htn", "state", "established", f"dport = :{port}"])
        return established and joined_locally(ns("a"), group.group)

    pids: list[int] = []
    try:
        pids.append(netns.spawn(ns(server_host), server, log=server_log, cpus=CPUS[server_host]))
        if not _wait(lambda: _tcp(ns(server_host), ["-Htln", f"sport = :{port}"])):
            raise RuntimeError(f"{path} server did not listen: {_tail(server_log)}")
        pids.append(netns.spawn(ns("a"), client, log=client_log, cpus=CPUS["a"]))
        if not _wait(forwarding):
            raise RuntimeError(f"{path} client did not start forwarding: {_tail(client_log)}")
        yield
    finally:
        netns.stop(pids)


def one_step(path: str, size: SizeRange, rate: int, workdir: Path, *, carried: bool = True) -> dict[str, Any]:
    """Send ``rate``/s for SECONDS on ``path`` (``carried=False``: without its relay, a control)."""
    sender, receiver = ENDS[path]
    group = GROUPS.get(path, GROUPS["overlay"])  # the underlay control: the overlay's group
    count = max(2_000, int(rate * SECONDS))
    stream_id = str(new_stream_id())  # what an earlier step left in flight is not counted
    out = workdir / "recv.out"
    out.unlink(missing_ok=True)
    listen = SECONDS * 3 + 10
    with carrier(path, workdir) if carried else nullcontext():
        pid = netns.spawn(
            ns("b"),
            netns.mcastkit_command(
                "probe", "recv", "--group", str(group), "--interface", receiver, "--count", str(count),
                "--timeout", f"{listen:.0f}", "--idle", "2", "--max-loss", "1", "--stream-id", stream_id,
                "--json",
            ),
            log=out,
            cpus=CPUS["b"],
        )  # fmt: skip
        _wait(lambda: joined_locally(ns("b"), group.group), 10)
        time.sleep(0.3)
        sent = netns.in_namespace(
            ns("a"),
            netns.mcastkit_command(
                "probe", "send", "--group", str(group), "--interface", sender, "--rate", str(rate),
                "--count", str(count), "--size", str(size), "--ttl", "2", "--stream-id", stream_id, "--json",
            ),
            timeout=SECONDS * 4 + 30,
            cpus=CPUS["a"],
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
    steps, best, stopped_by = climb(
        lambda rate: one_step(path, size, rate, workdir), rates, f"{path:10} {size!s:>7} B"
    )
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


# -- summary (pure: tests/test_overlay_bench.py calls these with hand-made runs) -----------------


def summarise(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per size (in the order run): each path's median and range over its runs, the ratios of the
    medians, and the goals judged on them (``None``: a path they need was not measured)."""
    table: dict[str, Any] = {}
    for size in dict.fromkeys(run["size"] for run in runs):
        row: dict[str, Any] = {}
        for path in PATHS:
            mine = [run for run in runs if run["path"] == path and run["size"] == size]
            at_10k = [run["latency_at_10k_us"] or {} for run in mine]
            row[path] = {
                "runs": len(mine),
                "max_zero_loss_rate": spread([run["max_zero_loss_rate"] for run in mine]),
                "p50_us_at_10k": spread([latency.get("p50_us") for latency in at_10k]),
                "p99_us_at_10k": spread([latency.get("p99_us") for latency in at_10k]),
                "stopped_by": [run["stopped_by"] for run in mine],
            }
        rate = {path: row[path]["max_zero_loss_rate"]["median"] for path in PATHS}
        row["ratios"] = {ratio: _ratio(*(rate[path] for path in ratio.split("/"))) for ratio in RATIOS}
        table[size] = row
    return {
        "table": table,
        "goals": {
            "overlay >= 90% of direct on every row": _every_row(table, "overlay", "direct", 0.9),
            "overlay ahead of n2n on every row": _every_row(table, "overlay", "n2n", 1.0, strictly=True),
        },
    }


def _ratio(rate: float | None, base: float | None) -> float | None:
    return None if rate is None or not base else round(rate / base, 2)


def _every_row(
    table: dict[str, Any], path: str, base: str, share: float, *, strictly: bool = False
) -> bool | None:
    pairs = [(row[path]["max_zero_loss_rate"]["median"], row[base]["max_zero_loss_rate"]["median"])
             for row in table.values()]  # fmt: skip
    if not pairs or any(None in pair for pair in pairs):
        return None
    return all(rate > share * other if strictly else rate >= share * other for rate, other in pairs)


def _number(value: float | None, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def _rate(case: dict[str, Any]) -> str:
    """The median; ``*`` when a run stopped because the sender fell short (not because of loss)."""
    if not case["runs"]:
        return "-"
    short = any(reason.startswith("sender reached only") for reason in case["stopped_by"])
    return _number(case["max_zero_loss_rate"]["median"]) + ("*" if short else "")


def _latency(case: dict[str, Any]) -> str:
    """p50/p99 at 10k msg/s; ``-`` when no run measured it (none, or none got that far)."""
    p50, p99 = case["p50_us_at_10k"]["median"], case["p99_us_at_10k"]["median"]
    return "-" if p99 is None else f"{_number(p50)}/{_number(p99)}"


def render(results: dict[str, Any]) -> str:
    """The README table, summarised afresh from the runs (an older JSON renders too)."""
    summary = summarise(results["runs"])
    columns = [
        f"max zero-loss msg/s: {PATHS[0]}",
        *PATHS[1:],
        *RATIOS,
        f"p50/p99 µs at 10k: {PATHS[0]}",
        *PATHS[1:],
    ]
    lines = ["| size | " + " | ".join(columns) + " |", "| --- |" + " ---: |" * len(columns)]
    for size, row in summary["table"].items():
        cells = [_rate(row[path]) for path in PATHS]
        cells += [_number(row["ratios"][ratio], ".2f") for ratio in RATIOS]
        cells += [_latency(row[path]) for path in PATHS]
        lines.append(f"| {size} B | " + " | ".join(cells) + " |")
    lines.append("")
    if any("*" in line for line in lines[2:]):
        lines.append("\\* no loss at that rate: the sender reached no higher through this path, so the "
                     "figure is the sending host's limit there, not the path's.")  # fmt: skip
    controls = results.get("controls", {"underlay": results.get("underlay_carries")})
    placement = json.dumps(results.get("placement", "any"))
    lines.append(f"goals: {json.dumps(summary['goals'])}; controls (datagrams heard, must be 0): "
                 f"{json.dumps(controls)}; load average at start {results['load_average']}; "
                 f"repeats {results['repeat']}; CPUs {placement}")  # fmt: skip
    return "\n".join(lines)


def _names(allowed: Sequence[str]) -> Callable[[str], list[str]]:
    """``argparse`` type: a comma-separated subset of ``allowed``."""

    def parse(text: str) -> list[str]:
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = sorted(set(names) - set(allowed))
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"{text!r}: choose from {','.join(allowed)}")
        return [name for name in allowed if name in names]

    return parse


def _sizes(text: str) -> list[SizeRange]:
    return [size_range(item.strip()) for item in text.split(",") if item.strip()]


def _n2n_version(install: bool) -> str:
    if shutil.which("edge") is None and install:
        subprocess.run(["apt-get", "install", "-y", "-qq", "n2n"], capture_output=True, check=False)
    if shutil.which("edge") is None or shutil.which("supernode") is None:
        sys.exit("overlay_bench: n2n is not installed (apt-get install -y n2n, or --install)")
    query = subprocess.run(["dpkg-query", "-W", "n2n"], capture_output=True, text=True, check=False)
    return query.stdout.strip()


def _wireguard_go_version(install: bool) -> str:
    """The overlays need wg and wireguard-go (this kernel has no WireGuard) on every run."""
    missing = [tool for tool in ("wg", "wireguard-go") if shutil.which(tool) is None]
    if missing and install:
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wireguard-tools",
                        "wireguard-go"], capture_output=True, check=False)  # fmt: skip
    if any(shutil.which(tool) is None for tool in ("wg", "wireguard-go")):
        sys.exit("overlay_bench: wireguard-tools and wireguard-go are not installed (or --install)")
    query = subprocess.run(["dpkg-query", "-W", "wireguard-go"], capture_output=True, text=True, check=False)
    return query.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--paths", type=_names(PATHS), default=list(PATHS), help=f"comma-separated ({','.join(PATHS)})"
    )
    parser.add_argument(
        "--sizes", type=_sizes, default=list(SIZES), help="comma-separated (default: 64,1024,64-512)"
    )
    parser.add_argument("--rates", help="comma-separated rates to step through (default: the full ladder)")
    parser.add_argument(
        "--install", action="store_true", help="apt-get install n2n, udptunnel and wireguard-go when missing"
    )
    parser.add_argument("--table", metavar="JSON", help="print the README table of an earlier run")
    args = parser.parse_args()
    if args.table:
        print(render(json.loads(Path(args.table).read_text())))
        return 0
    if os.geteuid() != 0:
        sys.exit("overlay_bench: run as root (network namespaces)")
    results: dict[str, Any] = {
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "repeat": args.repeat,
        "paths": args.paths,
        "cpus": os.cpu_count(),
        "placement": {host: cpus for host, cpus in CPUS.items() if cpus},
    }
    if "n2n" in args.paths:
        results["n2n"] = _n2n_version(args.install)
    results["wireguard-go"] = _wireguard_go_version(args.install)
    if "udptunnel" in args.paths:
        results["udptunnel"] = udptunnel_status(args.install)
        if not results["udptunnel"]["available"]:
            sys.exit(f"overlay_bench: {results['udptunnel']['reason']}")
    rates = tuple(int(r) for r in args.rates.split(",")) if args.rates else RATES
    results["runs"] = []
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mckob-")))
        stack.enter_context(topology(workdir, args.paths))
        results["controls"] = {"underlay": one_step("underlay", SIZES[0], 1_000, workdir)["received"]}
        for path in [path for path in ("relay", "udptunnel") if path in args.paths]:
            results["controls"][path] = one_step(path, SIZES[0], 1_000, workdir, carried=False)["received"]
        if any(results["controls"].values()):
            sys.exit(f"overlay_bench: multicast crossed without its path: {results['controls']}")
        for repeat in range(args.repeat):
            for size in args.sizes:
                for path in args.paths:
                    run = step_up(path, size, workdir, rates)
                    results["runs"].append({"repeat": repeat, "path": path, "size": str(size), **run})
    results["summary"] = summarise(results["runs"])
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
