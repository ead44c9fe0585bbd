"""``mcastkit lab up|run|down``: the whole multicast path on one machine, in network namespaces.

``up`` builds a datacenter segment (source + ingress relay), a routed link standing for Direct
Connect, and an AWS segment (a bridge with IGMP snooping and a querier standing for the TGW
multicast domain) with the egress relay, member receivers and one receiver that never joins;
each segment's processes run on their own half of the CPUs, as two hosts would.
``run`` pushes a probe stream end to end and prints a per-receiver table; ``stream`` runs a
sequenced stream (sequencer, loss, recovery) across the AWS segment; ``down`` removes it all.
Needs root and iproute2. A :class:`LabError` (exit 3) reaches :func:`mcastkit.cli.main` as it is.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from mcastkit.commands.args import add_fsync, bounded_float, bounded_int, group_port, size_range
from mcastkit.console import Console
from mcastkit.exit import ExitStatus
from mcastkit.lab.faults import Fault
from mcastkit.lab.session import DEFAULT_GROUP, DEFAULT_NAME, OUTAGE_AFTER, Lab, LabPath, StreamReport
from mcastkit.lab.stream import StreamPathReport, run_stream
from mcastkit.lab.topology import check_lab_name
from mcastkit.probe.wire import DEFAULT_SIZE


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("lab", help="the multicast path in network namespaces (root)")
    actions = parser.add_subparsers(dest="lab_command", required=True)

    def named(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--name",
            type=check_lab_name,
            default=DEFAULT_NAME,
            help=f"lab name, prefix of its namespaces ({DEFAULT_NAME})",
        )

    up = actions.add_parser("up", help="build the namespaces and start the relays")
    named(up)
    up.add_argument("--receivers", type=bounded_int(1, 8), default=2, help="receivers that join (2)")
    up.add_argument(
        "--group", type=group_port, default=DEFAULT_GROUP, metavar="G:P", help=f"({DEFAULT_GROUP})"
    )
    up.add_argument("--no-relay", dest="relay", action="store_false", help="build without relays")
    up.add_argument(
        "--shared-cpus",
        action="store_true",
        help="let every process run on any CPU (default: the datacenter and AWS sites each get "
        "half of the CPUs, as two hosts would)",
    )
    up.add_argument(
        "--no-gro",
        dest="gro",
        action="store_false",
        help="the receiving hosts' NICs do not coalesce bursts (default: GRO on, as a real NIC has)",
    )
    up.add_argument(
        "--tls",
        action="store_true",
        help="run the relays' link in TLS, with certificates of a throwaway CA (needs openssl)",
    )
    up.add_argument(
        "--fault",
        action="append",
        type=Fault,
        choices=list(Fault),
        default=[],
        help="break a host on purpose, for `mcastkit doctor` to find (repeatable): igmpv3 and rp-filter "
        "on the first receiver, ttl1 on the egress relay (default: none)",
    )
    up.set_defaults(handler=run_up)

    run = actions.add_parser("run", help="push a probe stream end to end and report per receiver")
    named(run)
    run.add_argument("--path", choices=("relay", "direct"), default=None, help="default: relay if running")
    run.add_argument("--count", type=bounded_int(1), default=10_000, help="datagrams the probe sends")
    run.add_argument("--rate", type=bounded_int(0), default=10_000, help="datagrams/s (0 = unpaced)")
    run.add_argument(
        "--size",
        type=size_range,
        default=DEFAULT_SIZE,
        metavar="BYTES|MIN-MAX",
        help="payload bytes, or a range each datagram's size is drawn from (default 64)",
    )
    run.add_argument("--max-loss", type=bounded_float(0.0, 1.0), default=0.0, help="fraction per member")
    run.add_argument(
        "--outage",
        type=bounded_float(0.0, 60.0),
        default=0.0,
        metavar="SECONDS",
        help=f"the link between the relays drops everything for SECONDS, from {OUTAGE_AFTER:g} s into "
        "the stream (a Direct Connect or VPN flap; relay path only; default: none)",
    )
    run.add_argument("--json", action="store_true", help="print the report as JSON")
    run.set_defaults(handler=run_run)

    stream = actions.add_parser(
        "stream", help="a sequenced stream across the TGW stand-in, with loss on the way, recovered"
    )
    named(stream)
    stream.add_argument("--count", type=bounded_int(1), default=20_000, help="datagrams published")
    stream.add_argument("--rate", type=bounded_int(0), default=10_000, help="datagrams/s (0 = unpaced)")
    stream.add_argument(
        "--size",
        type=size_range,
        default=DEFAULT_SIZE,
        metavar="BYTES|MIN-MAX",
        help="payload bytes (default 64)",
    )
    stream.add_argument(
        "--loss",
        type=bounded_float(0.0, 50.0),
        default=0.0,
        metavar="PERCENT",
        help="drop this share of the sequenced packets on the way into each receiver (iptables statistic)",
    )
    stream.add_argument(
        "--source",
        choices=("relay", "vpc"),
        default="relay",
        help="raw datagrams from the datacenter through the relays (default), or from a publisher "
        "in the VPC (the egress host): no relay between it and the sequencer",
    )
    stream.add_argument(
        "--recovery",
        choices=("retransmit", "replay"),
        default="retransmit",
        help="MoldUDP64 re-request (inside the VPC, default) or SoupBinTCP replay (a customer's way)",
    )
    stream.add_argument("--logger", action="store_true", help="also run the bus logger (on rx2)")
    add_fsync(stream, "the sequencer's (default interval)")
    stream.add_argument(
        "--receivers",
        type=bounded_int(0, 7),
        default=None,
        help="stream receivers (default: every member but rx1, which runs the sequencer)",
    )
    stream.add_argument("--json", action="store_true", help="print the report as JSON")
    stream.set_defaults(handler=run_stream_path)

    down = actions.add_parser("down", help="remove the lab's namespaces, links and processes")
    named(down)
    down.set_defaults(handler=run_down)


def run_up(args: argparse.Namespace, console: Console) -> ExitStatus:
    lab = Lab(args.name)
    state = lab.up(
        members=args.receivers,
        group=args.group,
        relay=args.relay,
        shared_cpus=args.shared_cpus,
        gro=args.gro,
        tls=args.tls,
        faults=args.fault,
    )
    layout = state.layout
    print(
        f"lab {state.name} is up: {len(layout.namespaces)} namespaces ({', '.join(layout.namespaces)})",
        file=console.out,
    )
    if state.relay:
        print(
            f"relay: ingress in {layout.ns('dc')} -> egress in {layout.ns('egress')}, group {state.group}",
            file=console.out,
        )
    sites = ", ".join(f"{site} on CPU {','.join(map(str, cpus))}" for site, cpus in state.cpus.items())
    print(f"cpus: {sites or 'every process on any CPU'}", file=console.out)
    print(f"receiving NICs: GRO {'on' if state.gro else 'off'}", file=console.out)
    if state.relay:
        print(f"relay link: {'TLS 1.3' if state.tls else 'TCP'}, sealed", file=console.out)
    if state.faults:
        print(
            f"faults: {', '.join(state.faults)} (`mcastkit doctor --netns NAME` finds them)", file=console.out
        )
    print(f"state and logs: {lab.run_dir}", file=console.out)
    return ExitStatus.OK


def run_run(args: argparse.Namespace, console: Console) -> ExitStatus:
    lab = Lab(args.name)
    path: LabPath = args.path or ("relay" if lab.state().relay else "direct")
    report = lab.run(path=path, count=args.count, rate=args.rate, size=args.size, outage=args.outage)
    if args.json:
        print(json.dumps(report.to_dict(args.max_loss)), file=console.out)
    else:
        print(render_table(report), file=console.out)
    if not report.ok(args.max_loss):
        console.error("a member missed datagrams or the non-member received some: see the table")
        return ExitStatus.FAILURE
    return ExitStatus.OK


def run_stream_path(args: argparse.Namespace, console: Console) -> ExitStatus:
    report = run_stream(
        Lab(args.name),
        count=args.count,
        rate=args.rate,
        size=args.size,
        loss=args.loss / 100,
        source=args.source,
        recovery=args.recovery,
        logger=args.logger,
        receivers=args.receivers,
        fsync=args.fsync,
    )
    if args.json:
        print(json.dumps(report.to_dict()), file=console.out)
    else:
        print(render_stream(report), file=console.out)
    if not report.ok():
        console.error("a receiver did not get every message in order: see the report")
        return ExitStatus.FAILURE
    return ExitStatus.OK


def render_stream(report: StreamPathReport) -> str:
    sender, sequencer = report.sender, report.sequencer
    lines = [
        f"stream path ({report.source} source, {report.recovery} recovery, "
        f"{report.loss:.2%} loss per receiver): "
        f"sent {sender.get('sent', '?')} x {report.size} B at {sender.get('achieved_rate', '?')}/s",
        f"sequencer: {sequencer.get('messages', '?')} messages in {sequencer.get('packets', '?')} packets; "
        f"retransmit {sequencer.get('retransmit', {})}",
        f"{'receiver':<9} {'delivered':>9} {'recovered':>9} {'unrecov':>8} {'dup':>5} {'dropped':>8} "
        f"{'requests':>8} {'p99 all µs':>10} {'p99 recov':>10}",
    ]
    rows = dict(report.receivers)
    if report.logger is not None:
        rows["logger"] = report.logger
    for name, r in rows.items():
        e2e = (r.get("latency_us") or {}).get("p99")
        recovered = (r.get("latency_recovered_us") or {}).get("p99")
        lines.append(
            f"{name:<9} {r.get('delivered', '-'):>9} {r.get('recovered', '-'):>9} "
            f"{r.get('unrecovered', '-'):>8} "
            f"{r.get('duplicates', '-'):>5} {report.dropped.get(name, '-'):>8} {r.get('requests', '-'):>8} "
            f"{_micros(e2e):>10} {_micros(recovered):>10}"
        )
    if report.logger is not None:
        lines.append(f"bus log: {report.logger.get('lines', 0)} lines")
    lines += [f"problem: {problem}" for problem in report.problems]
    return "\n".join(lines)


def run_down(args: argparse.Namespace, console: Console) -> ExitStatus:
    removed = Lab(args.name).down()
    print(
        f"lab {args.name}: removed {len(removed)} namespaces"
        if removed
        else f"lab {args.name}: nothing to remove",
        file=console.out,
    )
    return ExitStatus.OK


def render_table(report: StreamReport) -> str:
    sender = report.sender
    lines = [
        f"{report.path} path, {report.group}: sent {sender.get('sent', '?')} x {report.size} B "
        f"at {sender.get('achieved_rate', '?')}/s (target {report.rate or 'unpaced'})",
        f"{'receiver':<9} {'role':<10} {'igmp':<5} {'received':>9} {'lost':>7} {'loss':>8} {'dup':>5} "
        f"{'reord':>6} {'p50 µs':>8} {'p99 µs':>8}",
    ]
    for member in report.members:
        igmp = ",".join(member.igmp) or "-"
        received = member.report
        if received is None:  # the last line of what went wrong says most (the full text: --json)
            reason = (member.problem.strip().splitlines() or [""])[-1]
            lines.append(f"{member.name:<9} {'member':<10} {igmp:<5} {'no report':>9}   {reason}")
            continue
        lines.append(
            f"{member.name:<9} {'member':<10} {igmp:<5} "
            f"{received.unique:>9} {received.lost:>7} {received.loss:>8.2%} {received.duplicates:>5} "
            f"{received.reordered:>6} "
            f"{_micros(received.latency_us.p50):>8} {_micros(received.latency_us.p99):>8}"
        )
    frames = "" if report.frames is None else report.frames
    lines.append(
        f"{report.outsider:<9} {'not joined':<10} {'-':<5} {frames:>9}"
        f"   frames seen on the wire (snooping must keep this at 0)"
    )
    relay = report.relay
    if relay is not None:
        wanted = (
            "ingress.datagrams_in",
            "ingress.datagrams_due",
            "ingress.datagrams_out",
            "egress.datagrams_in",
            "egress.datagrams_out",
            "ingress.datagrams_in_runs",
            "egress.datagrams_in_runs",
        )
        counts = ", ".join(f"{key} {relay.get(key, 0)}" for key in wanted)
        trouble = {key: value for key, value in relay.items() if key not in wanted and value}
        lines.append(f"relay during the run: {counts}" + (f"; {trouble}" if trouble else ""))
    return "\n".join(lines)


def _micros(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"
