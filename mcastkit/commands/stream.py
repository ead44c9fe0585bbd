"""``mcastkit stream``: sequenced, recoverable multicast (MoldUDP64 out, SoupBinTCP replay).

- ``sequencer`` numbers every datagram of its input groups, journals it, publishes MoldUDP64,
  answers re-requests and serves replay;
- ``recv`` delivers a sequenced stream in order, exactly once, recovering gaps, and reports;
- ``log`` follows a stream and writes the bus log; ``show`` reads a journal.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import socket
import time
from pathlib import Path
from typing import Any

from mcastkit.commands.args import add_emf, add_fsync, bounded_float, bounded_int, group_port
from mcastkit.commands.stopping import until_stopped
from mcastkit.console import Console
from mcastkit.errors import BadInput, EnvironmentFailure
from mcastkit.exit import ExitStatus
from mcastkit.monitoring import emf
from mcastkit.net.addresses import AddressError, Endpoint, parse_endpoint, resolve_interface
from mcastkit.net.limits import MAX_DATAGRAM
from mcastkit.probe.stats import latency_summary
from mcastkit.probe.wire import HEADER as PROBE_HEADER
from mcastkit.probe.wire import MAGIC as PROBE_MAGIC
from mcastkit.stream import mold
from mcastkit.stream.gaps import DEFAULT_GIVE_UP
from mcastkit.stream.journal import DEFAULT_ROLL_BYTES, Journal
from mcastkit.stream.logger import lines
from mcastkit.stream.sequencer import Sequencer, SequencerSettings, emf_sampler
from mcastkit.stream.subscriber import Replay, Retransmit, Subscriber

log = logging.getLogger("mcastkit.stream")

STATS_EVERY = 10.0


def _endpoint(flag: str, *, listen: bool = False) -> Any:
    def parse(text: str) -> Endpoint:
        try:
            return parse_endpoint(text, flag=flag, any_port=listen)
        except AddressError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    return parse


def _session(text: str) -> str:
    try:
        mold.session_field(text)
    except BadInput as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("stream", help="sequenced, recoverable streams (MoldUDP64, SoupBinTCP)")
    actions = parser.add_subparsers(dest="stream_command", required=True)

    seq = actions.add_parser("sequencer", help="number, journal and publish the datagrams of input groups")
    seq.add_argument(
        "--in",
        dest="inputs",
        action="append",
        required=True,
        type=group_port,
        metavar="G:P",
        help="a raw input group (repeat for several)",
    )
    seq.add_argument("--interface", required=True, metavar="IFADDR", help="local interface address (or name)")
    seq.add_argument(
        "--out", required=True, type=group_port, metavar="G:P", help="the group to publish MoldUDP64 on"
    )
    seq.add_argument(
        "--session", required=True, type=_session, help="MoldUDP64 session name (1-10 characters)"
    )
    seq.add_argument("--journal", required=True, type=Path, metavar="DIR", help="the journal's directory")
    seq.add_argument(
        "--retransmit",
        type=_endpoint("--retransmit", listen=True),
        metavar="HOST:PORT",
        help="answer MoldUDP64 re-requests on this UDP address",
    )
    seq.add_argument(
        "--replay",
        type=_endpoint("--replay", listen=True),
        metavar="HOST:PORT",
        help="serve SoupBinTCP login and replay on this TCP address",
    )
    add_fsync(seq, "when the journal reaches the disk: none, interval (0.1 s, default), always")
    seq.add_argument(
        "--roll-bytes",
        type=bounded_int(1 << 20),
        default=DEFAULT_ROLL_BYTES,
        help="start a new journal file past this size (default 256 MiB)",
    )
    seq.add_argument(
        "--packet-bytes",
        type=bounded_int(mold.HEADER_SIZE + 3, MAX_DATAGRAM),
        default=MAX_DATAGRAM,
        help=f"largest MoldUDP64 packet (default {MAX_DATAGRAM}: the Transit Gateway's MTU)",
    )
    seq.add_argument("--ttl", type=bounded_int(1, 255), default=8, help="multicast TTL (default 8)")
    seq.add_argument(
        "--log-level", choices=["debug", "info", "warning"], default="info", help="what the sequencer logs"
    )
    add_emf(seq)
    seq.set_defaults(handler=run_sequencer)

    def follower(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--group", required=True, type=group_port, metavar="G:P", help="the sequenced stream"
        )
        sub.add_argument(
            "--interface", required=True, metavar="IFADDR", help="local interface address (or name)"
        )
        how = sub.add_mutually_exclusive_group()
        how.add_argument(
            "--retransmit",
            type=_endpoint("--retransmit"),
            metavar="HOST:PORT",
            help="recover by MoldUDP64 re-request (inside the provider's VPC)",
        )
        how.add_argument(
            "--replay",
            type=_endpoint("--replay"),
            metavar="HOST:PORT",
            help="recover by SoupBinTCP replay (a customer: the PrivateLink endpoint)",
        )
        sub.add_argument(
            "--from",
            dest="start",
            type=bounded_int(1),
            metavar="SEQ",
            help="begin at this sequence number (a late joiner; default: where the stream is)",
        )
        sub.add_argument(
            "--count", type=bounded_int(0), default=0, help="stop after this many messages (0: never)"
        )
        sub.add_argument(
            "--timeout",
            type=bounded_float(0, exclusive=True),
            default=None,
            help="stop after this many seconds",
        )
        sub.add_argument(
            "--give-up",
            type=bounded_float(0, exclusive=True),
            default=DEFAULT_GIVE_UP,
            help=f"seconds a gap may stay open before it counts as unrecovered (default {DEFAULT_GIVE_UP:g})",
        )
        sub.add_argument("--json", action="store_true", help="the report as JSON")

    recv = actions.add_parser("recv", help="deliver a sequenced stream in order, exactly once")
    follower(recv)
    to = recv.add_mutually_exclusive_group()
    to.add_argument(
        "--forward",
        type=_endpoint("--forward"),
        metavar="HOST:PORT",
        help="send each message to this UDP address instead of printing it",
    )
    to.add_argument("--quiet", action="store_true", help="deliver nowhere: count and report only")
    recv.set_defaults(handler=run_recv)

    logger = actions.add_parser("log", help="follow a stream and write the bus log")
    follower(logger)
    logger.add_argument("--output", type=Path, metavar="FILE", help="the log file (default: standard output)")
    logger.set_defaults(handler=run_log)

    show = actions.add_parser("show", help="print a journal as the bus log does")
    show.add_argument("journal", type=Path, metavar="DIR")
    show.add_argument(
        "--from",
        dest="start",
        type=bounded_int(1),
        default=1,
        metavar="SEQ",
        help="first sequence number shown",
    )
    show.add_argument("--count", type=bounded_int(1), default=None, help="at most this many messages")
    show.set_defaults(handler=run_show)


def _setup_logging(console: Console, level: str) -> None:
    handler = logging.StreamHandler(console.err)
    handler.setFormatter(logging.Formatter("%(asctime)s stream %(levelname)s %(message)s"))
    root = logging.getLogger("mcastkit")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def run_sequencer(args: argparse.Namespace, console: Console) -> ExitStatus:
    _setup_logging(console, args.log_level)
    interface = resolve_interface(args.interface)
    if any(group == args.out for group in args.inputs):
        raise BadInput(
            f"--out {args.out}: it is also an --in group; publish the sequenced stream on a group of its own"
        )
    session = mold.session_field(args.session)
    journal = Journal(args.journal, args.session, roll_bytes=args.roll_bytes, fsync=args.fsync)
    settings = SequencerSettings(
        inputs=args.inputs,
        interface=interface,
        output=args.out,
        session=session,
        ttl=args.ttl,
        packet_bytes=args.packet_bytes,
        retransmit=args.retransmit,
        replay=args.replay,
    )
    try:
        sequencer = Sequencer(settings, journal)
    except BaseException:
        journal.close()
        raise
    log.info(
        "session %s: journal %s continues at %d (fsync %s); publishing on %s",
        args.session,
        args.journal,
        journal.next_sequence,
        args.fsync,
        args.out,
    )
    if sequencer.replay is not None:
        log.info("replay (SoupBinTCP) on %s:%d", args.replay.host, sequencer.replay.port)
    state = {"at": time.monotonic()}

    def report_now() -> bool:
        now = time.monotonic()
        if now - state["at"] >= STATS_EVERY:
            state["at"] = now
            log.info("stats %s", json.dumps(_sequencer_stats(sequencer)))
        return False

    publisher = None
    if args.emf:
        publisher = emf.Publisher(args.emf, emf_sampler(sequencer), console.out, every=args.emf_every).start()
    with until_stopped() as keep_running:
        try:
            sequencer.run(until=lambda: report_now() or not keep_running())
        finally:
            if publisher is not None:
                publisher.close()
            sequencer.close()
            journal.close()
    log.info("stopped: %s", json.dumps(_sequencer_stats(sequencer)))
    return ExitStatus.OK


def _sequencer_stats(sequencer: Sequencer) -> dict[str, Any]:
    counts = sequencer.counts
    stats: dict[str, Any] = {
        "next_sequence": sequencer.journal.next_sequence,
        "messages": counts.messages,
        "packets": counts.packets,
        "cpu_seconds": round(time.process_time(), 3),
        "heartbeats": counts.heartbeats,
        "too_big": counts.too_big,
        "send_errors": counts.send_errors,
    }
    if sequencer.retransmitter is not None:
        stats["retransmit"] = vars(sequencer.retransmitter.counts)
    if sequencer.replay is not None:
        stats["replay"] = vars(sequencer.replay.counts)
    return stats


class _Latency:
    """End-to-end latency of probe datagrams carried as messages (one clock: a lab or synced
    hosts), of all of them and of those that came by recovery."""

    def __init__(self) -> None:
        self.samples: list[int] = []
        self.recovered: list[int] = []

    def take(self, first: int, messages: list[bytes], recovered: set[int]) -> None:
        now = time.time_ns()
        size, magic, unpack = PROBE_HEADER.size, PROBE_MAGIC, PROBE_HEADER.unpack_from
        samples = self.samples
        for number, message in enumerate(messages, first):
            if len(message) >= size and message.startswith(magic):
                sample = now - unpack(message)[3]
                samples.append(sample)
                if number in recovered:
                    self.recovered.append(sample)


def _follow(args: argparse.Namespace, console: Console, write: Any) -> ExitStatus:
    logging.basicConfig(
        level=logging.WARNING, stream=console.err, format="%(asctime)s stream %(levelname)s %(message)s"
    )
    interface = resolve_interface(args.interface)
    recovery = (
        Retransmit(args.retransmit) if args.retransmit else Replay(args.replay) if args.replay else None
    )
    latency = _Latency()
    delivered = [0]
    started = time.monotonic()
    deadline = None if args.timeout is None else started + args.timeout

    def deliver(first: int, messages: list[bytes]) -> bool:
        if args.count:
            messages = messages[: args.count - delivered[0]]
        latency.take(first, messages, subscriber.gaps.take_recovered(first, len(messages)))
        write(first, messages)
        delivered[0] += len(messages)
        return not args.count or delivered[0] < args.count

    with (
        until_stopped() as keep_running,
        Subscriber(
            args.group, interface, recovery=recovery, start=args.start, give_up=args.give_up
        ) as subscriber,
    ):
        subscriber.run(
            deliver,
            until=lambda: not keep_running() or (deadline is not None and time.monotonic() > deadline),
        )
    counts = subscriber.gaps.counts
    report = {
        "group": str(args.group),
        "session": mold.session_name(subscriber.session) if subscriber.session else None,
        "delivered": delivered[0],
        "received": counts.received,
        "recovered": counts.recovered,
        "unrecovered": counts.unrecovered,
        "duplicates": counts.duplicates,
        "redundant": counts.redundant,
        "gaps": counts.gaps,
        "requests": counts.requests,
        "outstanding": subscriber.gaps.outstanding,
        "seconds": round(time.monotonic() - started, 3),
        "cpu_seconds": round(time.process_time(), 3),
        "gap_fill_us": latency_summary(counts.gap_fill),
        "latency_us": latency_summary(latency.samples) if latency.samples else None,
        "latency_recovered_us": latency_summary(latency.recovered) if latency.recovered else None,
    }
    short = bool(args.count) and delivered[0] < args.count
    ok = counts.unrecovered == 0 and not short
    if args.json:
        print(json.dumps(report), file=console.err)
    else:
        print(_report_text(report), file=console.err)
    if not ok:
        why = (
            f"{counts.unrecovered} messages unrecovered"
            if counts.unrecovered
            else f"{delivered[0]} of {args.count} messages delivered"
        )
        console.error(f"stream {args.group}: {why}")
        return ExitStatus.FAILURE
    return ExitStatus.OK


def _report_text(report: dict[str, Any]) -> str:
    recovery = report["gap_fill_us"]
    text = (
        f"{report['group']} session {report['session']}: delivered {report['delivered']}, "
        f"received {report['received']}, recovered {report['recovered']}, "
        f"unrecovered {report['unrecovered']}, "
        f"duplicates {report['duplicates']}, gaps {report['gaps']}, requests {report['requests']}"
    )
    if recovery["p50"] is not None:
        text += (
            f"; recovery latency p50 {recovery['p50']} us, p99 {recovery['p99']} us, max {recovery['max']} us"
        )
    return text


def run_recv(args: argparse.Namespace, console: Console) -> ExitStatus:
    if args.quiet:
        return _follow(args, console, lambda first, messages: None)
    if args.forward:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.connect((args.forward.host, args.forward.port))

        def forward(first: int, messages: list[bytes]) -> None:
            for message in messages:
                try:
                    sock.send(message)
                except ConnectionRefusedError:  # nobody listening (yet): the application's to mind
                    continue

        with sock:
            return _follow(args, console, forward)
    out = console.out

    def emit(first: int, messages: list[bytes]) -> None:
        out.write(
            "".join(
                json.dumps({"seq": n, "data": base64.b64encode(m).decode("ascii")}) + "\n"
                for n, m in enumerate(messages, first)
            )
        )

    return _follow(args, console, emit)


def run_log(args: argparse.Namespace, console: Console) -> ExitStatus:
    if args.output is None:
        return _follow(args, console, lambda first, messages: console.out.write(lines(first, messages)))
    try:
        output = args.output.open("a", encoding="ascii", buffering=1 << 20)
    except OSError as err:
        raise EnvironmentFailure(f"--output {args.output}: {err.strerror}") from None
    with output:
        return _follow(args, console, lambda first, messages: output.write(lines(first, messages)))


def run_show(args: argparse.Namespace, console: Console) -> ExitStatus:
    journal = Journal.for_reading(args.journal)
    try:
        sequence, end = args.start, journal.next_sequence
        if args.count is not None:
            end = min(end, sequence + args.count)
        if sequence < journal.first_sequence or (sequence >= end and sequence != journal.next_sequence):
            raise BadInput(
                f"--from {sequence}: the journal holds "
                f"{journal.first_sequence} to {journal.next_sequence - 1}"
            )
        while sequence < end:
            messages = journal.read(sequence, min(65_536, end - sequence))
            console.out.write(lines(sequence, messages))
            sequence += len(messages)
    except BrokenPipeError:  # `| head`: the reader has what it wanted
        pass
    finally:
        journal.close()
    return ExitStatus.OK
