"""``mcastkit relay ingress|egress``: carry multicast over TCP where the network will not.

Frame format and authentication: see :mod:`mcastkit.relay`.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import signal
from collections.abc import Callable
from typing import Any

from mcastkit.commands.args import add_emf, bounded_float, bounded_int, group_port
from mcastkit.console import Console
from mcastkit.errors import EnvironmentFailure, McastkitError
from mcastkit.exit import ExitStatus
from mcastkit.monitoring import emf
from mcastkit.net.addresses import (
    AddressError,
    Endpoint,
    GroupPort,
    parse_endpoint,
    parse_group,
    resolve_interface,
)
from mcastkit.net.sockets import DEFAULT_BUFFER_BYTES
from mcastkit.relay.auth import load_secret
from mcastkit.relay.downstream import Downstream
from mcastkit.relay.egress import Egress
from mcastkit.relay.fanout import DEFAULT_QUEUE_BYTES
from mcastkit.relay.frame import MAX_RESUME_STREAMS
from mcastkit.relay.ingress import RECEIVE_BUFFER_BYTES, Ingress
from mcastkit.relay.link import RelayNode
from mcastkit.relay.metrics import MetricsServer, RelayStats, emf_sampler
from mcastkit.relay.tls import load_tls
from mcastkit.relay.window import DEFAULT_REPLAY_BYTES, DEFAULT_REPLAY_SECONDS

log = logging.getLogger("mcastkit.relay")

_EPILOG_INGRESS = """\
example (datacenter side, egress tasks dial in):
  mcastkit relay ingress --group 239.1.1.1:5000 --group 239.1.1.2:5001 --interface 10.0.0.5 \\
      --listen 0.0.0.0:7400 --secret-file /etc/mcastkit/relay.secret --metrics 10.0.0.5:9400
"""

_EPILOG_EGRESS = """\
example (ECS task in the multicast subnet, dialing the datacenter):
  mcastkit relay egress --connect 10.0.0.5:7400 --interface eth0 --ttl 8 \\
      --secret-env RELAY_SECRET --map 239.1.1.1:5000=239.10.1.1:5000 --allow 239.10.1.1:5000 \\
      --metrics 10.20.0.15:9400
example (London: one group as unicast to two receivers, and Tokyo's egress served from here):
  mcastkit relay egress --connect 10.0.0.5:7400 --interface eth0 --ttl 8 --secret-env RELAY_SECRET \\
      --allow 239.10.1.1:5000 --allow 239.10.1.2:5002 \\
      --unicast 239.10.1.2:5002=10.20.1.5:6000,10.20.1.6:6000 --serve 0.0.0.0:7400
"""


def register(subparsers: Any) -> None:
    relay = subparsers.add_parser(
        "relay",
        help="relay multicast over TCP (ingress in the datacenter, egress in AWS)",
        description="Relay multicast over an authenticated TCP link. Either side may dial; the dialer "
        "reconnects with backoff. Frame format and handshake: see the mcastkit.relay module docs.",
    )
    roles = relay.add_subparsers(dest="role", required=True, parser_class=type(relay))

    ingress = roles.add_parser(
        "ingress",
        help="join groups and stream every datagram to the egress peers",
        epilog=_EPILOG_INGRESS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ingress.add_argument(
        "--group", action="append", required=True, metavar="G:P", help="group and port to join (repeatable)"
    )
    _interface(ingress, "join the groups on this interface")
    _endpoints(ingress, connect_help="dial this egress (repeatable: one link per egress region)")
    _common(ingress)
    _count(ingress, "--max-peers", 32, "authenticated egress peers at once with --listen")
    _count(ingress, "--rcvbuf", RECEIVE_BUFFER_BYTES, "UDP receive buffer per group; as root beyond rmem_max")
    _serving(ingress, only_with=None)
    ingress.set_defaults(handler=run_ingress)

    egress = roles.add_parser(
        "egress",
        help="re-emit what an ingress sends as multicast",
        epilog=_EPILOG_EGRESS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _endpoints(egress, connect_help="dial this ingress (repeatable)")
    _interface(egress, "send multicast out of this interface")
    egress.add_argument(
        "--ttl", type=bounded_int(1, 255), required=True, metavar="N", help="multicast TTL (1-255)"
    )
    _common(egress)
    egress.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="G:P=G2:P2",
        help="emit what arrives for G:P to G2:P2 instead (repeatable); other groups keep their address",
    )
    egress.add_argument(
        "--allow",
        action="append",
        required=True,
        type=group_port,
        metavar="G:P",
        help="emit only to this group and port (repeatable; after --map); whatever else the ingress "
        "sends is dropped and counted (drops{reason=not_allowed})",
    )
    egress.add_argument(
        "--no-loop",
        action="store_true",
        help="do not deliver to listeners on this host (IP_MULTICAST_LOOP off; default: on)",
    )
    egress.add_argument(
        "--unicast",
        action="append",
        default=[],
        metavar="G:P=HOST:PORT[,HOST:PORT...]",
        help="send what this egress emits to G:P (an --allow group, after --map) as unicast UDP to "
        "each HOST:PORT instead of as multicast (repeatable, one per group; other groups stay multicast)",
    )
    _count(
        egress, "--sndbuf", DEFAULT_BUFFER_BYTES, "UDP send buffer (the group's and each unicast target's)"
    )
    _count(egress, "--max-peers", 8, "authenticated ingress peers at once with --listen")
    tree = egress.add_argument_group(
        "serving egresses below this one (a relay tree: datacenter, London, Tokyo)",
        "re-send all this egress takes (every group, before --map and --allow) to egresses that dial "
        "here, with the ingress's sequence numbers, resume and replay; same secret and TLS options",
    )
    tree.add_argument(
        "--serve",
        metavar="HOST:PORT",
        help="accept downstream egresses here (needs one upstream: --connect once, or --listen with "
        "--max-peers 1)",
    )
    tree.add_argument(
        "--serve-max-peers",
        type=bounded_int(1),
        metavar="N",
        help="authenticated downstream egresses at once (with --serve; default: 32)",
    )
    _serving(tree, only_with="--serve")
    egress.set_defaults(handler=run_egress)


def _serving(parser: argparse.ArgumentParser | argparse._ArgumentGroup, *, only_with: str | None) -> None:
    """How a relay serves egress peers: their queues and the replay window (the ingress, and an
    egress with ``--serve``, whose defaults are None so that a value given without it is caught)."""
    note = f"with {only_with}; " if only_with else ""

    def default(value: float) -> float | None:
        return None if only_with else value

    parser.add_argument(
        "--queue-bytes",
        type=bounded_int(1),
        default=default(DEFAULT_QUEUE_BYTES),
        metavar="N",
        help=f"per-peer send queue (bytes); a peer further behind is dropped ({note}default: "
        f"{DEFAULT_QUEUE_BYTES})",
    )
    parser.add_argument(
        "--replay-bytes",
        type=bounded_int(0),
        default=default(DEFAULT_REPLAY_BYTES),
        metavar="N",
        help="keep this much of the recent stream (frames and bookkeeping), all groups together, to "
        f"replay to an egress that reconnects after an outage (0: keep nothing; {note}default: "
        f"{DEFAULT_REPLAY_BYTES}, 15-20 s of 100k msg/s of 64 B)",
    )
    parser.add_argument(
        "--replay-seconds",
        type=bounded_float(0.0),
        default=default(DEFAULT_REPLAY_SECONDS),
        metavar="SECONDS",
        help=f"and nothing older than this ({note}default: {DEFAULT_REPLAY_SECONDS:g})",
    )


def _count(parser: argparse.ArgumentParser, flag: str, default: int, purpose: str) -> None:
    parser.add_argument(
        flag, type=bounded_int(1), default=default, metavar="N", help=f"{purpose} (default: %(default)s)"
    )


def _interface(parser: argparse.ArgumentParser, purpose: str) -> None:
    parser.add_argument(
        "--interface",
        required=True,
        metavar="IFADDR",
        help=f"{purpose}: an IPv4 address of this host, or an interface name such as eth0",
    )


def _endpoints(parser: argparse.ArgumentParser, *, connect_help: str) -> None:
    side = parser.add_mutually_exclusive_group(required=True)
    side.add_argument("--listen", metavar="HOST:PORT", help="accept the peer's connections here")
    side.add_argument("--connect", action="append", metavar="HOST:PORT", help=connect_help)


def _common(parser: argparse.ArgumentParser) -> None:
    secret = parser.add_mutually_exclusive_group(required=True)
    secret.add_argument("--secret-file", metavar="FILE", help="file holding the shared secret")
    secret.add_argument(
        "--secret-env",
        metavar="NAME",
        help="environment variable holding the shared secret (ECS injects Secrets Manager values so)",
    )
    parser.add_argument(
        "--metrics", metavar="HOST:PORT", help="serve Prometheus /metrics and /healthz here (default: off)"
    )
    add_emf(parser)
    tls = parser.add_argument_group(
        "TLS", "encrypt the link (mutual TLS 1.3; both sides need all three; default: plain TCP, sealed)"
    )
    tls.add_argument("--tls-cert", metavar="FILE", help="this relay's certificate (PEM)")
    tls.add_argument("--tls-key", metavar="FILE", help="its private key (PEM, readable by the owner only)")
    tls.add_argument("--tls-ca", metavar="FILE", help="the CA that signs both relays' certificates (PEM)")
    parser.add_argument(
        "--heartbeat",
        type=bounded_float(0.0, exclusive=True),
        default=1.0,
        metavar="SECONDS",
        help="heartbeat interval; a link silent for 3 intervals is dropped (default: %(default)s)",
    )
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default="info",
        help="(default: %(default)s)",
    )


def _parse_map(values: list[str]) -> dict[tuple[str, int], tuple[str, int]]:
    mapping: dict[tuple[str, int], tuple[str, int]] = {}
    for value in values:
        source, sep, target = value.partition("=")
        if not sep:
            raise AddressError(f"--map {value!r}: expected G:P=G2:P2")
        key = parse_group(source, flag="--map")
        if key in mapping:
            raise AddressError(f"--map {value!r}: {source} is mapped twice")
        mapping[key] = parse_group(target, flag="--map")
    return mapping


def _parse_unicast(values: list[str], allowed: set[GroupPort]) -> dict[tuple[str, int], tuple[Endpoint, ...]]:
    """``--unicast G:P=HOST:PORT[,HOST:PORT...]``: per allowed group, its receivers' addresses."""
    unicast: dict[tuple[str, int], tuple[Endpoint, ...]] = {}
    for value in values:
        where = f"--unicast {value!r}"
        source, sep, listed = value.partition("=")
        if not sep or not listed:
            raise AddressError(
                f"{where}: expected G:P=HOST:PORT[,HOST:PORT...], e.g. 239.10.1.1:5000=10.20.1.5:6000"
            )
        try:
            group = parse_group(source, flag="")
        except AddressError as err:
            raise AddressError(f"{where}: group {err}") from None
        if group not in allowed:
            raise AddressError(
                f"{where}: {group} is not an --allow group; add --allow {group} (name the group this "
                "egress emits, after --map)"
            )
        if group in unicast:
            raise AddressError(f"{where}: {group} is given twice; list all its receivers in one --unicast")
        targets: list[Endpoint] = []
        for item in listed.split(","):
            target = _unicast_target(item, where)
            if target in targets:
                raise AddressError(f"{where}: {target} is listed twice for {group}; name each receiver once")
            targets.append(target)
        unicast[group] = tuple(targets)
    return unicast


def _unicast_target(item: str, where: str) -> Endpoint:
    """One receiver of ``--unicast``: an IPv4 unicast address and a port."""
    try:
        target = parse_endpoint(item, flag="")
    except AddressError as err:
        raise AddressError(f"{where}: target {err}") from None
    try:
        address = ipaddress.IPv4Address(target.host)
    except ValueError:
        raise AddressError(
            f"{where}: target {item!r}: {target.host!r} is not an IPv4 address; give the receiver's address"
        ) from None
    if address.is_multicast or address.is_unspecified or address == ipaddress.IPv4Address("255.255.255.255"):
        raise AddressError(
            f"{where}: target {item!r}: {address} is not one receiver's address; give a unicast address "
            "(a group goes out as multicast without --unicast)"
        )
    return Endpoint(str(address), target.port)


def _parse_serve(args: argparse.Namespace) -> Endpoint | None:
    """``--serve`` and what goes with it; a serving option without it is an error."""
    if args.serve is None:
        for flag in ("--serve-max-peers", "--queue-bytes", "--replay-bytes", "--replay-seconds"):
            value = getattr(args, flag[2:].replace("-", "_"))
            if value is not None:
                raise AddressError(
                    f"{flag} {value}: only with --serve (how this egress serves the egresses below it)"
                )
        return None
    serve = parse_endpoint(args.serve, flag="--serve", any_port=True)
    upstream = len(args.connect or []) if args.listen is None else args.max_peers
    if upstream != 1:
        given = (
            f"--connect given {upstream} times"
            if args.listen is None
            else f"--listen with --max-peers {args.max_peers}"
        )
        raise AddressError(
            f"--serve {args.serve}: relays one ingress, and {given} lets in more: give --connect once, "
            "or --listen with --max-peers 1"
        )
    return serve


def _setup_logging(console: Console, level: str, role: str) -> None:
    handler = logging.StreamHandler(console.err)
    handler.setFormatter(logging.Formatter(f"%(asctime)s relay-{role} %(levelname)s %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level.upper())
    log.propagate = False


def _endpoints_of(args: argparse.Namespace) -> tuple[Endpoint | None, list[tuple[str, int]]]:
    listen = parse_endpoint(args.listen, flag="--listen", any_port=True) if args.listen else None
    connect: list[tuple[str, int]] = [parse_endpoint(value, flag="--connect") for value in args.connect or []]
    return listen, connect


def run_ingress(args: argparse.Namespace, console: Console) -> ExitStatus:
    def build(secret: bytes, stats: RelayStats) -> RelayNode:
        groups = [parse_group(value, flag="--group") for value in args.group]
        duplicates = {g for g in groups if groups.count(g) > 1}
        if duplicates:
            raise AddressError(f"--group {sorted(duplicates)[0][0]}:{sorted(duplicates)[0][1]} given twice")
        node = Ingress(
            groups=groups,
            interface=resolve_interface(args.interface),
            secret=secret,
            stats=stats,
            heartbeat=args.heartbeat,
            queue_bytes=args.queue_bytes,
            buffer_bytes=args.rcvbuf,
            max_peers=args.max_peers,
            tls=load_tls(args.tls_cert, args.tls_key, args.tls_ca),
            replay_bytes=args.replay_bytes,
            replay_seconds=args.replay_seconds,
        )
        node.open()
        log.info("joined %s on %s", ", ".join(args.group), node.interface)
        if not node.window.enabled:
            log.warning("--replay-bytes or --replay-seconds is 0: an egress that reconnects resumes nothing")
        return node

    return _run(args, console, "ingress", build)


def run_egress(args: argparse.Namespace, console: Console) -> ExitStatus:
    allowed: set[GroupPort] = set(args.allow)
    if len(allowed) > MAX_RESUME_STREAMS:
        raise AddressError(
            f"--allow names {len(allowed)} groups; at most {MAX_RESUME_STREAMS} (what a resume can name)"
        )
    unicast = _parse_unicast(args.unicast, allowed)
    serve = _parse_serve(args)

    def build(secret: bytes, stats: RelayStats) -> RelayNode:
        tls = load_tls(args.tls_cert, args.tls_key, args.tls_ca)
        downstream = None
        if serve is not None:
            downstream = Downstream(
                address=serve,
                secret=secret,
                stats=RelayStats(role="downstream"),
                heartbeat=args.heartbeat,
                max_peers=args.serve_max_peers or 32,
                tls=tls,
                queue_bytes=args.queue_bytes or DEFAULT_QUEUE_BYTES,
                replay_bytes=DEFAULT_REPLAY_BYTES if args.replay_bytes is None else args.replay_bytes,
                replay_seconds=DEFAULT_REPLAY_SECONDS if args.replay_seconds is None else args.replay_seconds,
            )
        node = Egress(
            interface=resolve_interface(args.interface),
            ttl=args.ttl,
            secret=secret,
            stats=stats,
            mapping=_parse_map(args.map),
            allow=allowed,
            heartbeat=args.heartbeat,
            loop=not args.no_loop,
            buffer_bytes=args.sndbuf,
            max_peers=args.max_peers,
            tls=tls,
            unicast=unicast,
            downstream=downstream,
        )
        node.open()
        log.info("emitting from %s with TTL %d", node.interface, node.ttl)
        for group, targets in unicast.items():
            log.info("%s goes as unicast to %s, not as multicast", group, ", ".join(map(str, targets)))
        if downstream is not None and not downstream.window.enabled:
            log.warning(
                "--replay-bytes or --replay-seconds is 0: an egress below that reconnects resumes nothing"
            )
        return node

    return _run(args, console, "egress", build)


def _run(
    args: argparse.Namespace,
    console: Console,
    role: str,
    build: Callable[[bytes, RelayStats], RelayNode],
) -> ExitStatus:
    """Start a relay node; a bad secret or address (exit 2) and a refused socket (exit 3) reach
    :func:`mcastkit.cli.main` as :class:`McastkitError`."""
    _setup_logging(console, args.log_level, role)
    secret = load_secret(path=args.secret_file, env=args.secret_env)
    listen, connect = _endpoints_of(args)
    metrics_at = parse_endpoint(args.metrics, flag="--metrics", any_port=True) if args.metrics else None
    stats = RelayStats(role=role)
    try:
        publisher = None
        if args.emf:
            publisher = emf.Publisher(args.emf, emf_sampler(stats), console.out, every=args.emf_every)
        return _serve(build, secret, stats, listen, connect, metrics_at, publisher)
    except McastkitError:
        raise  # a bad --interface or group (exit 2), a refused join (SocketSetupError, exit 3)
    except OSError as err:  # a bare OSError: the kernel refused the --listen address
        where = f"--listen {listen}" if listen is not None else "socket"
        raise EnvironmentFailure(f"{where}: {err.strerror or err}") from err


def _serve(
    build: Callable[[bytes, RelayStats], RelayNode],
    secret: bytes,
    stats: RelayStats,
    listen: Endpoint | None,
    connect: list[tuple[str, int]],
    metrics_at: Endpoint | None,
    publisher: emf.Publisher | None,
) -> ExitStatus:
    metrics: MetricsServer | None = None
    if metrics_at is not None:
        try:
            metrics = MetricsServer(stats, *metrics_at)
        except OSError as err:
            raise EnvironmentFailure(f"--metrics {metrics_at}: {err.strerror or err}") from err
        metrics.start()
        log.info("metrics on http://%s:%d/metrics and /healthz", metrics_at.host, metrics.port)
    if publisher is not None:
        publisher.start()
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            node = build(secret, stats)
            runner.run(_main(node, listen, connect))
    finally:
        if metrics is not None:
            metrics.close()
        if publisher is not None:
            publisher.close()
    log.info("stopped")
    return ExitStatus.OK


async def _main(node: RelayNode, listen: Endpoint | None, connect: list[tuple[str, int]]) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _stopping, node, signum)
    await node.run(listen=listen, connect=connect)


def _stopping(node: RelayNode, signum: int) -> None:
    log.info("%s: draining and stopping", signal.Signals(signum).name)
    node.stop()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; the stdlib loop also works
        return None
    return uvloop.new_event_loop
