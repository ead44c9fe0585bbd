"""``mcastkit probe``: prove delivery of a multicast group with a paced, numbered stream.

- ``send`` paces a stream (sequence number + send time in every datagram); ``--count 0``
  sends until stopped;
- ``recv`` counts it: received, lost, duplicates, reordered, one-way latency p50/p99/max;
  ``--count 0`` follows an open-ended stream and reports every ``--report-every`` seconds;
- ``echo`` / ``rtt`` measure round trips across hosts whose clocks are not synchronized.
"""

from __future__ import annotations

import argparse
import functools
import json
import socket
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from mcastkit.commands.args import add_emf, bounded_float, bounded_int, group_port, size_range
from mcastkit.commands.stopping import until_stopped
from mcastkit.console import Console
from mcastkit.errors import BadInput, EnvironmentFailure, McastkitError
from mcastkit.exit import ExitStatus
from mcastkit.monitoring import emf
from mcastkit.net.addresses import GroupPort, resolve_interface
from mcastkit.net.sockets import open_receiver, open_sender, set_receive_timeout
from mcastkit.probe.monitor import monitor_stream
from mcastkit.probe.passive import watch_feed
from mcastkit.probe.receiver import RECEIVE_BUFFER_BYTES, ReceiveResult, receive_stream
from mcastkit.probe.report import ProbeReport, within_budget
from mcastkit.probe.roundtrip import RoundTripResult, echo, measure_rtt
from mcastkit.probe.sender import new_stream_id, send_stream
from mcastkit.probe.wire import DEFAULT_SIZE, HEADER_SIZE, MAX_SIZE

#: ``recv`` gives up on a finite stream after this many seconds unless told otherwise.
DEFAULT_RECEIVE_TIMEOUT = 30.0


def _receiver(group: GroupPort, interface: str, timeout: float = 0.1) -> socket.socket:
    return open_receiver(*group, interface, buffer_bytes=RECEIVE_BUFFER_BYTES, timeout=timeout)


def _sender(group: GroupPort, interface: str, ttl: int) -> socket.socket:
    return open_sender(interface, ttl=ttl, loop=True, connect=group)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("probe", help="send, receive and echo probe streams")
    actions = parser.add_subparsers(dest="probe_command", required=True)

    def common(sub: argparse.ArgumentParser, *, ttl: bool = False) -> None:
        sub.add_argument(
            "--group", required=True, type=group_port, metavar="G:P", help="multicast group:port"
        )
        sub.add_argument(
            "--interface", required=True, metavar="IFADDR", help="local interface address (or name)"
        )
        if ttl:
            sub.add_argument("--ttl", type=bounded_int(1, 255), default=1, help="multicast TTL (default 1)")

    send = actions.add_parser("send", help="send a paced, numbered stream")
    common(send, ttl=True)
    send.add_argument("--rate", type=bounded_int(0), default=1000, help="datagrams/s; 0 = unpaced")
    send.add_argument(
        "--count", type=bounded_int(0), default=10_000, help="datagrams; 0 = until stopped (SIGTERM, Ctrl-C)"
    )
    send.add_argument(
        "--size",
        type=size_range,
        default=DEFAULT_SIZE,
        metavar="BYTES|MIN-MAX",
        help="payload bytes, or a range each datagram's size is drawn from (default 64)",
    )
    send.add_argument(
        "--stream-id", type=bounded_int(0, 2**32 - 1), default=None, help="stream id (default: random)"
    )
    send.add_argument("--json", action="store_true", help="print the report as JSON")
    send.set_defaults(handler=run_send)

    recv = actions.add_parser("recv", help="receive and count a stream")
    common(recv)
    recv.add_argument(
        "--count",
        type=bounded_int(0),
        default=10_000,
        help="datagrams the sender sends; 0 = an open-ended stream, reported every --report-every s",
    )
    recv.add_argument(
        "--timeout",
        type=bounded_float(0.1),
        default=None,
        help="give up (--count 0: stop) after S seconds (default 30; --count 0: never)",
    )
    recv.add_argument(
        "--report-every", type=bounded_float(0.1), default=60.0, help="--count 0: seconds per report (60)"
    )
    recv.add_argument(
        "--idle",
        type=bounded_float(0.05),
        default=2.0,
        help="stop S seconds after the last datagram (not with --count 0)",
    )
    recv.add_argument(
        "--max-loss",
        type=bounded_float(0.0, 1.0),
        default=0.0,
        help="fraction (0-1); with --count 0, per interval",
    )
    recv.add_argument(
        "--stream-id",
        type=bounded_int(0, 2**32 - 1),
        default=None,
        help="count only this stream (default: the first one heard); others are foreign",
    )
    recv.add_argument(
        "--passive",
        action="store_true",
        help="watch any feed instead of a probe stream: rate, sizes and silences for --timeout s (10)",
    )
    recv.add_argument(
        "--gap",
        type=bounded_float(0.001),
        default=1.0,
        help="--passive: a silence this long (s) counts as a gap (default 1)",
    )
    recv.add_argument("--json", action="store_true", help="print the report as JSON")
    add_emf(recv, every=False)
    recv.set_defaults(handler=run_recv)

    echo_parser = actions.add_parser("echo", help="re-emit a group's probe datagrams to a reply group")
    common(echo_parser, ttl=True)
    echo_parser.add_argument(
        "--reply", required=True, type=group_port, metavar="G:P", help="reply group:port"
    )
    echo_parser.add_argument("--count", type=bounded_int(0), default=0, help="stop after N (0 = never)")
    echo_parser.add_argument(
        "--timeout", type=bounded_float(0.0), default=0.0, help="stop after S s (0 = never)"
    )
    echo_parser.set_defaults(handler=run_echo)

    rtt = actions.add_parser("rtt", help="round-trip latency through a remote `probe echo`")
    common(rtt, ttl=True)
    rtt.add_argument(
        "--reply", required=True, type=group_port, metavar="G:P", help="group the echo replies to"
    )
    rtt.add_argument("--count", type=bounded_int(1), default=100, help="round trips to measure")
    rtt.add_argument("--size", type=bounded_int(HEADER_SIZE, MAX_SIZE), default=64, help="bytes per datagram")
    rtt.add_argument("--interval", type=bounded_float(0.0), default=0.01, help="seconds between pings")
    rtt.add_argument(
        "--loss-timeout", type=bounded_float(0.001), default=0.5, help="seconds to wait for each echo"
    )
    rtt.add_argument("--max-loss", type=bounded_float(0.0, 1.0), default=0.0, help="fraction (0-1)")
    rtt.add_argument("--json", action="store_true", help="print the report as JSON")
    rtt.set_defaults(handler=run_rtt)


_Handler = Callable[[argparse.Namespace, Console], ExitStatus]


def _network_errors(handler: _Handler) -> _Handler:
    """A bare ``OSError`` from the network becomes an :class:`EnvironmentFailure` saying so (exit 3).

    Errors that explain themselves (a bad ``--interface``: :class:`AddressError`; a refused
    join or bind: :class:`SocketSetupError`) reach :func:`mcastkit.cli.main` as they are.
    """

    @functools.wraps(handler)
    def run(args: argparse.Namespace, console: Console) -> ExitStatus:
        try:
            return handler(args, console)
        except McastkitError:
            raise
        except OSError as err:
            raise EnvironmentFailure(f"network: {err.strerror or err}") from err

    return run


def _progress_line(console: Console, text: str) -> None:
    console.out.write(f"\r{text}\x1b[K")
    console.out.flush()


@_network_errors
def run_send(args: argparse.Namespace, console: Console) -> ExitStatus:
    interface = resolve_interface(args.interface)
    sock = _sender(args.group, interface, args.ttl)
    progress = None
    if console.interactive and not args.json:

        def progress(sent: int) -> None:
            _progress_line(console, f"sent {sent}/{args.count or 'until stopped'}")

    with sock, until_stopped() as keep_running:
        report = send_stream(
            sock,
            args.group,
            rate=args.rate,
            count=args.count,
            size=args.size,
            stream_id=new_stream_id() if args.stream_id is None else args.stream_id,
            progress=progress,
            keep_running=keep_running,
        )
    if progress is not None:
        console.out.write("\n")
    summary = {
        "group": str(args.group),
        "interface": interface,
        "stream_id": report.stream_id,
        "sent": report.sent,
        "send_errors": report.send_errors,
        "size": str(args.size),
        "target_rate": args.rate,
        "achieved_rate": round(report.rate),
        "seconds": round(report.seconds, 3),
    }
    _report(
        console,
        summary if args.json else None,
        f"sent {report.sent} x {args.size} B to {args.group} from {interface} in "
        f"{report.seconds:.2f} s ({report.rate:,.0f}/s, target {args.rate or 'unpaced'})",
    )
    if report.send_errors:
        console.error(f"the kernel refused {report.send_errors} datagram(s): receivers will count them lost")
        return ExitStatus.FAILURE
    if args.count and report.sent < args.count:
        return ExitStatus.INTERRUPTED  # stopped by a signal before the end
    return ExitStatus.OK


def _report(console: Console, as_json: dict[str, Any] | None, text: str) -> None:
    """The JSON document when asked for (``--json``), else the line for people."""
    print(text if as_json is None else json.dumps(as_json), file=console.out)


def _format_latency(latency: dict[str, float | None]) -> str:
    return "/".join("-" if value is None else f"{value:.0f}" for value in latency.values())


#: ``recv --passive`` watches this long unless told otherwise.
DEFAULT_PASSIVE_SECONDS = 10.0


def _feed_hint(console: Console, foreign: int) -> None:
    """Nothing of a probe stream, but other datagrams: the group carries a feed (or another tool)."""
    console.error(
        f"{foreign} datagrams from another sender: this group carries a feed, not a probe stream; "
        "use --passive to watch it"
    )


@_network_errors
def run_recv(args: argparse.Namespace, console: Console) -> ExitStatus:
    if args.emf and (args.passive or args.count != 0):
        raise BadInput(f"--emf {args.emf}: metrics come from an open-ended probe stream; add --count 0")
    if args.passive:
        return _run_passive(args, console)
    if args.count == 0:
        return _run_monitor(args, console)
    interface = resolve_interface(args.interface)
    progress = None
    if console.interactive and not args.json:

        def progress(partial: ReceiveResult) -> None:
            stats = partial.stats
            _progress_line(
                console,
                f"received {stats.unique}/{stats.expected}  dup {stats.duplicates}  "
                f"reordered {stats.reordered}  {partial.seconds:.1f}s",
            )

    with _receiver(args.group, interface) as sock:
        result = receive_stream(
            sock,
            count=args.count,
            timeout=DEFAULT_RECEIVE_TIMEOUT if args.timeout is None else args.timeout,
            idle=args.idle,
            progress=progress,
        )
    if progress is not None:
        console.out.write("\n")
    report = ProbeReport.of(result, group=str(args.group), interface=interface, max_loss=args.max_loss)
    if args.json:
        print(report.to_json(), file=console.out)
    else:
        print(
            f"{args.group} on {interface}: received {report.unique}/{report.expected} "
            f"(lost {report.lost}, {report.loss:.4%}), duplicates {report.duplicates}, "
            f"reordered {report.reordered}, latency p50/p99/max "
            f"{_format_latency(asdict(report.latency_us))} µs, stopped by {report.stopped_by}",
            file=console.out,
        )
    if report.unique == 0 and report.foreign:
        _feed_hint(console, report.foreign)
    if not report.ok():
        console.error(f"loss {report.loss:.4%} exceeds --max-loss {args.max_loss:.4%}")
        return ExitStatus.FAILURE
    return ExitStatus.OK


def _run_passive(args: argparse.Namespace, console: Console) -> ExitStatus:
    """``recv --passive``: what arrives on the group, probe or not; exit 1 if nothing did."""
    interface = resolve_interface(args.interface)
    seconds = DEFAULT_PASSIVE_SECONDS if args.timeout is None else args.timeout
    with until_stopped() as keep_running, _receiver(args.group, interface, timeout=0.1) as sock:
        feed = watch_feed(
            sock, group=str(args.group), interface=interface, seconds=seconds, gap=args.gap,
            keep_running=keep_running,
        )  # fmt: skip
    sizes = "-" if feed.size_mean is None else f"{feed.size_min}/{feed.size_mean:.0f}/{feed.size_max}"
    _report(
        console,
        feed.to_json() if args.json else None,
        f"{args.group} on {interface}: {feed.datagrams} datagrams in {feed.seconds:.1f} s "
        f"({feed.rate:,.0f}/s, {feed.megabits_per_second:.2f} Mbit/s), "
        f"sizes min/mean/max {sizes} B, {feed.silences} silence(s) of {args.gap:g} s or more "
        f"(longest {feed.longest_silence:.2f} s), {feed.probe_datagrams} probe datagrams",
    )
    if not feed.datagrams:
        console.error(f"nothing arrived on {args.group} in {seconds:g} s")
        return ExitStatus.FAILURE
    return ExitStatus.OK


def _run_monitor(args: argparse.Namespace, console: Console) -> ExitStatus:
    """``recv --count 0``: one report per interval until stopped; exit 1 if any was over budget."""
    interface = resolve_interface(args.interface)
    over_budget = [0]

    hinted = [False]
    restarts = emf.Deltas()

    def report(stream_id: int | None, interval: dict[str, Any]) -> None:
        ok = within_budget(interval["received"], interval["loss"], args.max_loss)
        over_budget[0] += not ok
        if interval["received"] == 0 and interval["foreign"] and not hinted[0]:
            hinted[0] = True
            _feed_hint(console, interval["foreign"])
        summary = {"group": str(args.group), "interface": interface, "stream_id": stream_id, **interval}
        _report(
            console,
            {**summary, "max_loss": args.max_loss, "ok": ok} if args.json else None,
            f"{args.group} {interval['seconds']:.0f}s: received {interval['received']} "
            f"(lost {interval['lost']}, {interval['loss']:.4%}), duplicates {interval['duplicates']}, "
            f"reordered {interval['reordered']}, missing {interval['missing']}, "
            f"restarts {interval['restarts']}, latency p50/p99/max "
            f"{_format_latency(interval['latency_us'])} µs",
        )
        if args.emf:
            values = _probe_metrics(interval)
            values.update(restarts.since_last({emf.Probe.SENDER_RESTARTS: interval["restarts"]}))
            print(emf.line(args.emf, values), file=console.out)
        console.out.flush()

    with until_stopped() as keep_running, _receiver(args.group, interface, timeout=0.2) as sock:
        monitor_stream(
            sock,
            every=args.report_every,
            report=report,
            keep_running=keep_running,
            stream_id=args.stream_id,
            timeout=args.timeout,
        )
    if over_budget[0]:
        console.error(f"{over_budget[0]} interval(s) had no datagram or loss over --max-loss")
        return ExitStatus.FAILURE
    return ExitStatus.OK


def _probe_metrics(interval: dict[str, Any]) -> dict[emf.Metric, float]:
    """An interval's report as the metrics ``--emf`` publishes (no latency without a datagram)."""
    m = emf.Probe
    values: dict[emf.Metric, float] = {
        m.RECEIVED: interval["received"],
        m.LOST: interval["lost"],
        m.LOSS: round(interval["loss"] * 100, 6),
        m.FOREIGN: interval["foreign"],
    }
    p99 = interval["latency_us"]["p99"]
    if p99 is not None:
        values[m.LATENCY_P99] = p99
    return values


@_network_errors
def run_echo(args: argparse.Namespace, console: Console) -> ExitStatus:
    interface = resolve_interface(args.interface)
    with (
        until_stopped() as keep_running,
        _receiver(args.group, interface, timeout=0.2) as listen,
        _sender(args.reply, interface, args.ttl) as reply,
    ):
        echoed = echo(listen, reply, count=args.count, timeout=args.timeout, keep_running=keep_running)
    print(f"echoed {echoed} datagrams from {args.group} to {args.reply}", file=console.out)
    return ExitStatus.OK


@_network_errors
def run_rtt(args: argparse.Namespace, console: Console) -> ExitStatus:
    interface = resolve_interface(args.interface)
    progress = None
    if console.interactive and not args.json:

        def progress(partial: RoundTripResult) -> None:
            _progress_line(console, f"answered {partial.answered}/{partial.sent}")

    with (
        _sender(args.group, interface, args.ttl) as send,
        _receiver(args.reply, interface) as listen,
    ):
        set_receive_timeout(listen, min(args.loss_timeout, 0.05))
        result = measure_rtt(
            send,
            listen,
            count=args.count,
            size=args.size,
            interval=args.interval,
            loss_timeout=args.loss_timeout,
            stream_id=new_stream_id(),
            progress=progress,
        )
    if progress is not None:
        console.out.write("\n")
    summary: dict[str, Any] = {"group": str(args.group), "reply": str(args.reply), **result.summary()}
    ok = within_budget(result.answered, result.lost / result.sent, args.max_loss)
    summary["ok"] = ok
    _report(
        console,
        summary if args.json else None,
        f"{args.group} -> {args.reply}: answered {result.answered}/{result.sent}, "
        f"late {result.late}, rtt p50/p99/max {_format_latency(summary['rtt_us'])} µs",
    )
    if not ok:
        console.error(f"{result.lost} of {result.sent} pings unanswered (--max-loss {args.max_loss})")
        return ExitStatus.FAILURE
    return ExitStatus.OK
