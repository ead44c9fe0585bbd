"""The lab's stream path: a sequenced stream across the TGW stand-in, with loss on the way.

::

    source --raw group--> [rx1] sequencer --MoldUDP64 group--> br0 --x-- [rx2..] stream recv
                           journal, retransmit, replay  <--re-request / replay--

The first member host (rx1, an instance in the multicast domain) runs the sequencer; the
other members receive the sequenced stream and recover what ``--loss`` drops on its way to
them (iptables ``statistic``, in each receiver's namespace: between the bridge and the
receiver). The raw datagrams come from the datacenter through the relays (``source=relay``)
or from a publisher in the VPC, the egress host standing for it (``source=vpc``: no relay in
the way of the sequencer's rate). Optionally one receiver also runs the bus logger.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mcastkit.lab import netns, topology
from mcastkit.lab.netns import LabError
from mcastkit.lab.session import JOIN_WAIT, Lab, _last_json, _listening, _read, udp_receive_buffer_errors
from mcastkit.lab.topology import EGRESS_ADDRESS, SOURCE_ADDRESS
from mcastkit.net.addresses import GroupPort
from mcastkit.probe.wire import SizeRange
from mcastkit.stream.fsync import Fsync

StreamSource = Literal["relay", "vpc"]
Recovery = Literal["retransmit", "replay"]
#: The sequenced stream's group, and the raw group a publisher in the VPC uses.
STREAM_GROUP = GroupPort("239.1.2.1", 5101)
VPC_RAW_GROUP = GroupPort("239.1.1.2", 5002)
RETRANSMIT_PORT, REPLAY_PORT = 17002, 17001
SESSION = "LAB"


@dataclass
class StreamPathReport:
    source: str
    recovery: str
    fsync: str
    count: int
    rate: int
    size: str
    loss: float
    sender: dict[str, Any]
    sequencer: dict[str, Any]
    receivers: dict[str, dict[str, Any]]
    #: Packets the loss rule dropped, per receiver.
    dropped: dict[str, int]
    #: UDP datagrams dropped for want of socket buffer during the run, per host.
    socket_buffer_drops: dict[str, int]
    logger: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)

    def ok(self) -> bool:
        reports = list(self.receivers.values()) + ([self.logger] if self.logger is not None else [])
        return not self.problems and all(
            r.get("delivered") == self.count and r.get("unrecovered") == 0 for r in reports
        )

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "ok": self.ok()}


def run_stream(
    lab: Lab,
    *,
    count: int,
    rate: int,
    size: SizeRange,
    loss: float = 0.0,
    source: StreamSource = "relay",
    recovery: Recovery = "retransmit",
    logger: bool = False,
    receivers: int | None = None,
    fsync: Fsync = Fsync.INTERVAL,
) -> StreamPathReport:
    """Sequence ``count`` datagrams sent at ``rate``/s; ``receivers`` (default: every member but
    the sequencer's host) receive the stream, ``logger`` runs the bus logger on the first of them."""
    netns.check_environment()
    state = lab.state()
    layout = state.layout
    members = [r for r in layout.receivers if r.member]
    if len(members) < 2:
        raise LabError(
            "the stream path needs 2 members (one runs the sequencer): `lab down` and `lab up --receivers 2`"
        )
    if source == "relay" and not state.relay:
        raise LabError(f"lab {lab.name!r} was brought up with --no-relay: use --source vpc")
    if loss and shutil.which("iptables") is None:
        raise LabError("--loss needs iptables (Debian: apt-get install iptables)")
    host, hosts = members[0], members[1:]
    followers = hosts if receivers is None else hosts[:receivers]
    if not followers and not logger:
        raise LabError("nothing would receive the stream: give --receivers 1 or more, or --logger")
    #: The hosts the stream goes to (the logger runs on rx2), where the loss rule applies.
    lossy = sorted(
        {r.name: r for r in followers + (hosts[:1] if logger else [])}.values(), key=lambda r: r.name
    )
    raw = state.group_port if source == "relay" else VPC_RAW_GROUP
    run_dir = lab.run_dir / "stream"
    # The bus log in memory where there is a tmpfs: in the lab the logger's disk would be the
    # sequencer's (a deployment's logger is on a host of its own), and writing 1 GB of log next to
    # the journal stalled the journal's writes (measured: the sequencer lost 2 % of its input).
    shm = Path("/dev/shm")
    bus_log = (shm if shm.is_dir() else run_dir) / f"mcastkit-{lab.name}-bus.log"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    send_seconds = count / rate if rate else count / 200_000
    listen = JOIN_WAIT + send_seconds * 2 + 20
    endpoint = f"{host.address}:{RETRANSMIT_PORT if recovery == 'retransmit' else REPLAY_PORT}"
    watched = {r.name: r.namespace for r in members}
    drops_before = {name: udp_receive_buffer_errors(ns) for name, ns in watched.items()}
    spawned: dict[str, int] = {}
    with lab._streaming():
        time.sleep(max(0.0, state.snooping_from - time.time()))
        try:
            spawned["sequencer"] = netns.spawn(
                host.namespace,
                netns.mcastkit_command(
                    "stream", "sequencer", "--in", str(raw), "--interface", host.address,
                    "--out", str(STREAM_GROUP), "--session", SESSION, "--journal", str(run_dir / "journal"),
                    "--retransmit", f"{host.address}:{RETRANSMIT_PORT}",
                    "--replay", f"{host.address}:{REPLAY_PORT}",
                    "--ttl", "1", "--fsync", str(fsync),
                ),
                log=run_dir / "sequencer.log",
                cpus=state.site_cpus("aws"),
            )  # fmt: skip
            lab._wait(
                lambda: _listening(host.namespace, REPLAY_PORT),
                "the sequencer",
                "stream/sequencer",
                JOIN_WAIT,
            )
            for receiver in lossy if loss else []:
                _drop(receiver.namespace, "-A", loss)
            # Each run's journal is new: the receivers start at 1, so that a first packet lost on the
            # way is recovered too (without --from, a receiver starts at the first packet it sees).
            for receiver in followers:
                spawned[receiver.name] = netns.spawn(
                    receiver.namespace,
                    netns.mcastkit_command(
                        "stream", "recv", "--group", str(STREAM_GROUP), "--interface", receiver.address,
                        f"--{recovery}", endpoint, "--from", "1", "--count", str(count),
                        "--timeout", f"{listen:.0f}",
                        "--quiet", "--json",
                    ),
                    log=run_dir / f"{receiver.name}.out",
                    cpus=state.site_cpus("aws"),
                )  # fmt: skip
            if logger:
                spawned["logger"] = netns.spawn(
                    hosts[0].namespace,
                    netns.mcastkit_command(
                        "stream", "log", "--group", str(STREAM_GROUP), "--interface", hosts[0].address,
                        f"--{recovery}", endpoint, "--from", "1", "--count", str(count),
                        "--timeout", f"{listen:.0f}",
                        "--json", "--output", str(bus_log),
                    ),
                    log=run_dir / "logger.out",
                    cpus=state.site_cpus("aws"),
                )  # fmt: skip
            tgw = layout.ns("tgw")
            # Both ends, as for a probe stream: each socket holds its membership (the bridge's entry
            # can be the previous run's, still there; a receiver that joined late would start
            # after the first messages), and the bridge has snooped it.
            lab._wait(
                lambda: (
                    all(topology.joined_locally(r.namespace, STREAM_GROUP.group) for r in lossy)
                    and topology.joined_locally(host.namespace, raw.group)
                    and {r.bridge_port for r in lossy} <= topology.joined_ports(tgw, STREAM_GROUP.group)
                    and host.bridge_port in topology.joined_ports(tgw, raw.group)
                ),
                "the receivers and the sequencer to join (bridge snooping table)",
                "stream/sequencer",
                JOIN_WAIT,
            )
            sender_ns, sender_address = (
                (layout.ns("src"), SOURCE_ADDRESS)
                if source == "relay"
                else (layout.ns("egress"), EGRESS_ADDRESS)
            )
            sender_output = netns.in_namespace(
                sender_ns,
                netns.mcastkit_command(
                    "probe", "send", "--group", str(raw), "--interface", sender_address, "--rate", str(rate),
                    "--count", str(count), "--size", str(size), "--ttl", "1", "--json",
                ),
                timeout=send_seconds * 4 + 30,
                # Either way on the datacenter's CPUs: the relays are idle with a VPC publisher, and a
                # publisher is a host of its own, not a share of the sequencer's.
                cpus=state.site_cpus("datacenter"),
            )  # fmt: skip
            netns.wait_exit([pid for name, pid in spawned.items() if name != "sequencer"], listen + 5)
        finally:
            netns.stop(list(spawned.values()))
            dropped = {r.name: _drop(r.namespace, "-D", loss) for r in (lossy if loss else [])}
    problems = []
    sequencer = _sequencer_stats(_read(run_dir / "sequencer.log"))
    if sequencer is None:
        problems.append(
            f"the sequencer printed no stats; its log ends: {_read(run_dir / 'sequencer.log')[-400:]}"
        )
    reports = {}
    for receiver in followers:
        report = _last_json(_read(run_dir / f"{receiver.name}.out"))
        if report is None:
            problems.append(
                f"{receiver.name} printed no report: {_read(run_dir / f'{receiver.name}.out')[-400:]}"
            )
        reports[receiver.name] = report or {}
    logger_report = None
    if logger:
        logger_report = _last_json(_read(run_dir / "logger.out")) or {}
        logger_report["lines"] = _count_lines(bus_log)
        bus_log.unlink(missing_ok=True)
    return StreamPathReport(
        source=source, recovery=recovery, fsync=str(fsync), count=count, rate=rate, size=str(size), loss=loss,
        sender=_last_json(sender_output) or {}, sequencer=sequencer or {}, receivers=reports, dropped=dropped,
        socket_buffer_drops={n: udp_receive_buffer_errors(ns) - drops_before[n] for n, ns in watched.items()},
        logger=logger_report, problems=problems,
    )  # fmt: skip


def _drop(namespace: str, action: str, share: float) -> int:
    """Add (``-A``) or delete (``-D``) the rule that drops ``share`` of the stream's packets on
    their way into ``namespace``; on delete, return how many it dropped."""
    rule = ["INPUT", "-p", "udp", "-d", STREAM_GROUP.group, "--dport", str(STREAM_GROUP.port),
            "-m", "statistic", "--mode", "random", "--probability", f"{share:.6f}", "-j", "DROP"]  # fmt: skip
    dropped = 0
    if action == "-D":
        listing = netns.in_namespace(namespace, ["iptables", "-L", "INPUT", "-v", "-x", "-n"], check=False)
        for line in listing.splitlines():
            if "statistic" in line and STREAM_GROUP.group in line:
                dropped = int(line.split()[0])
    netns.in_namespace(namespace, ["iptables", action, *rule], check=action == "-A")
    return dropped


def _sequencer_stats(log: str) -> dict[str, Any] | None:
    for line in reversed(log.splitlines()):
        if " stopped: {" in line:
            stats: dict[str, Any] = json.loads(line.split(" stopped: ", 1)[1])
            return stats
    return None


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    except FileNotFoundError:
        return 0
