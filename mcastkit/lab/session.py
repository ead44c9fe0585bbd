"""A lab's life: ``up`` builds the namespaces and starts the relays, ``run`` pushes a probe stream
through them, ``down`` removes everything. State (pids, choices) lives in a run directory so each
step can be a separate command.

A stream's outcome is a :class:`StreamReport`: every member's :class:`ProbeReport` as its
``probe recv --json`` printed it, judged by the probe's own rule (:meth:`ProbeReport.ok`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Collection, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from prometheus_client.parser import text_string_to_metric_families

from mcastkit.lab import netns, pki, topology
from mcastkit.lab.faults import Fault
from mcastkit.lab.faults import apply as apply_faults
from mcastkit.lab.netns import LabError
from mcastkit.lab.topology import EGRESS_ADDRESS, INGRESS_ADDRESS, SOURCE_ADDRESS, Layout
from mcastkit.net.addresses import GroupPort, parse_group
from mcastkit.probe.report import ProbeReport, ReportError
from mcastkit.probe.sender import new_stream_id
from mcastkit.probe.wire import DEFAULT_SIZE, SizeRange

RUN_ROOT = Path("/run/mcastkit-lab")
DEFAULT_NAME = "mcklab"
DEFAULT_GROUP = GroupPort("239.1.1.1", 5001)
RELAY_PORT = 7400
RELAY_TTL = 4
#: Prometheus endpoints of the relays, each on its host's loopback.
METRICS_PORTS = {"ingress": 9101, "egress": 9102}
#: The relay's metric names start so; the lab's counter keys leave it out (``ingress.gaps``).
METRIC_PREFIX = "mcastkit_relay_"
_SCRAPE = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=3).read().decode())"
#: How long receivers may take to appear in the bridge's snooping table.
JOIN_WAIT = 10.0
#: ``--outage``: the Direct Connect link goes dark this long after the sender starts.
OUTAGE_AFTER = 2.0
#: A relay notices a dead link after 3 heartbeats and redials with backoff of up to 5 s: with an
#: outage, receivers wait this much longer than it before they call the stream over.
OUTAGE_RECOVERY = 12.0

LabPath = Literal["relay", "direct"]
#: The datacenter's hosts (source, ingress relay) and the AWS segment's (egress relay, receivers).
Site = Literal["datacenter", "aws"]


@dataclass
class LabState:
    name: str
    members: int
    group: str
    relay: bool
    #: Wall-clock time from which the bridge applies IGMP snooping (see SNOOPING_SETTLE).
    snooping_from: float = 0.0
    pids: dict[str, int] = field(default_factory=dict)
    #: The CPUs each site's processes run on; empty: every process may run on any CPU.
    cpus: dict[str, list[int]] = field(default_factory=dict)
    #: Whether the receiving hosts' NICs coalesce bursts (GRO); state files from before it: on.
    gro: bool = True
    #: Whether the relays' link runs in TLS (``relay --tls-*``).
    tls: bool = False
    #: Faults the lab was built with (:class:`faults.Fault` values).
    faults: list[str] = field(default_factory=list)

    def site_cpus(self, site: Site) -> list[int] | None:
        return self.cpus.get(site)

    @property
    def layout(self) -> Layout:
        return Layout(self.name, self.members)

    @property
    def group_port(self) -> GroupPort:
        return parse_group(self.group, flag="the lab's group")


@dataclass(frozen=True)
class Member:
    """A receiver that joined: its probe report, or what it printed instead (``problem``)."""

    name: str
    address: str
    #: IGMP versions on its interface (``V2``: the bootstrap ran).
    igmp: tuple[str, ...]
    report: ProbeReport | None
    problem: str = ""

    @classmethod
    def from_output(cls, name: str, address: str, output: str, igmp: Collection[str]) -> Member:
        """The member whose ``probe recv --json`` printed ``output``: its last JSON line is the report."""
        versions = tuple(sorted(igmp))
        line = next((line for line in reversed(output.splitlines()) if line.startswith("{")), None)
        if line is None:
            return cls(
                name, address, versions, None, problem=f"no probe report; its output ends: {output[-500:]}"
            )
        try:
            return cls(name, address, versions, ProbeReport.from_json(line))
        except ReportError as err:
            return cls(name, address, versions, None, problem=str(err))

    def to_dict(self) -> dict[str, Any]:
        found = self.report.to_dict() if self.report is not None else {"error": self.problem}
        return {"name": self.name, "member": True, "address": self.address, **found, "igmp": list(self.igmp)}


@dataclass(frozen=True)
class StreamReport:
    """One stream through the lab: what the sender did, what every member received, and how
    many of its frames reached the receiver that never joined (``frames``; ``None``: unknown)."""

    origin: Site
    group: str
    count: int
    rate: int
    size: str
    cpus: dict[str, list[int]]
    #: ``probe send --json`` (empty when it printed none).
    sender: dict[str, Any]
    members: tuple[Member, ...]
    outsider: str
    outsider_address: str
    frames: int | None
    #: Datagrams dropped for want of socket buffer, per receiver and on the ingress host.
    socket_buffer_drops: dict[str, int]
    #: Set by :meth:`Lab.run`: the path, and the relays' counters that moved during the stream.
    path: LabPath | None = None
    relay: dict[str, int] | None = None

    def ok(self, max_loss: float) -> bool:
        """Every member heard the stream within ``max_loss`` and the outsider saw none of it."""
        members_ok = all(m.report is not None and m.report.ok(max_loss) for m in self.members)
        return members_ok and self.frames == 0

    def to_dict(self, max_loss: float) -> dict[str, Any]:
        """The ``lab run --json`` document, judged by ``max_loss``."""
        document: dict[str, Any] = {
            **({"path": self.path} if self.path is not None else {}),
            "socket_buffer_drops": self.socket_buffer_drops,
            "origin": self.origin,
            "cpus": self.cpus,
            "group": self.group,
            "count": self.count,
            "rate": self.rate,
            "size": self.size,
            "sender": self.sender,
            "receivers": [
                *(member.to_dict() for member in self.members),
                {
                    "name": self.outsider,
                    "member": False,
                    "address": self.outsider_address,
                    "frames": self.frames,
                },
            ],
            "ok": self.ok(max_loss),
        }
        if self.relay is not None:
            document["relay"] = self.relay
        return document


def split_cpus(available: Collection[int]) -> dict[str, list[int]]:
    """Give each site half of the ``available`` CPUs (the datacenter the lower half), as two hosts
    would have their own; with a single CPU there is nothing to split (empty)."""
    ordered = sorted(available)
    if len(ordered) < 2:
        return {}
    half = len(ordered) // 2
    return {"datacenter": ordered[:half], "aws": ordered[half:]}


def relay_available() -> bool:
    """Whether this installation has ``mcastkit relay`` (ingress and egress)."""
    completed = subprocess.run(
        [sys.executable, "-m", "mcastkit", "relay", "--help"], capture_output=True, timeout=30, check=False
    )
    return completed.returncode == 0


class Lab:
    def __init__(self, name: str = DEFAULT_NAME, *, run_root: Path = RUN_ROOT) -> None:
        Layout(name)  # validates the name before anything touches the system
        self.name = name
        self.run_dir = run_root / name
        self._streaming_now = False

    @property
    def state_file(self) -> Path:
        return self.run_dir / "state.json"

    def state(self) -> LabState:
        try:
            return LabState(**json.loads(self.state_file.read_text()))
        except FileNotFoundError:
            raise LabError(f"lab {self.name!r} is not up: run `mcastkit lab up --name {self.name}`") from None

    def _save(self, state: LabState) -> None:
        self.state_file.write_text(json.dumps(asdict(state), indent=2))

    # -- up / down -------------------------------------------------------------------------------

    def up(
        self,
        *,
        members: int = 2,
        group: GroupPort = DEFAULT_GROUP,
        relay: bool = True,
        shared_cpus: bool = False,
        gro: bool = True,
        tls: bool = False,
        faults: Collection[Fault] = (),
    ) -> LabState:
        """Build the namespaces and start the relays.

        The datacenter's processes and the AWS segment's run on separate CPUs (:func:`split_cpus`),
        so that one site's load does not delay the other, as on two hosts; ``shared_cpus`` lets
        every process run on any CPU. ``gro=False`` turns receive coalescing off on the receiving
        hosts' NICs (a NIC or driver without GRO). ``tls`` runs the relays' link in TLS, with
        certificates of a throwaway CA made in the run directory. ``faults`` break hosts on
        purpose (:mod:`mcastkit.lab.faults`), for ``mcastkit doctor`` to find.
        """
        netns.check_environment()
        layout = Layout(self.name, members)
        if self.state_file.exists() or topology.owned_namespaces(self.name):
            raise LabError(f"lab {self.name!r} is already up: `mcastkit lab down --name {self.name}` first")
        if relay and not relay_available():
            raise LabError("`mcastkit relay` is not available in this installation: use `lab up --no-relay`")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        state = LabState(
            name=self.name,
            members=members,
            group=str(group),
            relay=relay,
            snooping_from=time.time() + topology.SNOOPING_SETTLE,
            cpus={} if shared_cpus else split_cpus(os.sched_getaffinity(0)),
            gro=gro,
            tls=tls,
            faults=sorted(faults),
        )
        self._save(state)
        try:
            topology.build(layout, gro=gro)
            apply_faults(layout, set(faults))
            if relay:
                self._start_relays(state, group)
        except BaseException:
            self.down()
            raise
        return state

    def down(self) -> list[str]:
        """Stop the lab's processes and delete its namespaces; return the namespaces removed.

        Safe to run twice and after a half-built ``up``: it works from what exists.
        """
        netns.check_environment()
        if self.state_file.exists():
            pids = [pid for pid in self.state().pids.values() if _is_ours(pid)]
            netns.stop(pids)
        removed = topology.remove(self.name)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        return removed

    def _start_relays(self, state: LabState, group: GroupPort) -> None:
        layout = state.layout
        secret = self.run_dir / "relay.secret"
        secret.touch(mode=0o600)
        secret.write_text(secrets.token_hex(32) + "\n")
        tls: dict[str, list[str]] = {"ingress": [], "egress": []}
        if state.tls:
            folder = self.run_dir / "pki"
            folder.mkdir(mode=0o700)
            ca = pki.make_ca(folder, "lab-relay-ca")
            tls = {role: pki.issue(folder, role, ca).flags() for role in tls}
        state.pids["egress"] = netns.spawn(
            layout.ns("egress"),
            netns.mcastkit_command(
                "relay", "egress",
                "--listen", f"{EGRESS_ADDRESS}:{RELAY_PORT}",
                "--interface", EGRESS_ADDRESS,
                "--ttl", "1" if Fault.TTL1 in state.faults else str(RELAY_TTL),
                "--secret-file", str(secret),
                "--allow", str(group),
                "--metrics", f"127.0.0.1:{METRICS_PORTS['egress']}",
                *tls["egress"],
            ),
            log=self.run_dir / "egress.log",
            cpus=state.site_cpus("aws"),
        )  # fmt: skip
        self._save(state)
        self._wait(
            lambda: _listening(layout.ns("egress"), RELAY_PORT), "the egress relay to listen", "egress"
        )
        state.pids["ingress"] = netns.spawn(
            layout.ns("dc"),
            netns.mcastkit_command(
                "relay", "ingress",
                "--group", str(group),
                "--interface", INGRESS_ADDRESS,
                "--connect", f"{EGRESS_ADDRESS}:{RELAY_PORT}",
                "--secret-file", str(secret),
                "--metrics", f"127.0.0.1:{METRICS_PORTS['ingress']}",
                *tls["ingress"],
            ),
            log=self.run_dir / "ingress.log",
            cpus=state.site_cpus("datacenter"),
        )  # fmt: skip
        self._save(state)
        self._wait(lambda: _connected(layout.ns("dc"), RELAY_PORT), "the ingress relay to connect", "ingress")

    def _wait(self, condition: Any, what: str, log_name: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.1)
        raise LabError(f"timed out waiting for {what}; last lines of its log:\n{self.log_tail(log_name)}")

    def log_tail(self, log_name: str, lines: int = 15) -> str:
        try:
            text = (self.run_dir / f"{log_name}.log").read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- run -------------------------------------------------------------------------------------

    def run(
        self,
        *,
        path: LabPath = "relay",
        count: int = 10_000,
        rate: int = 10_000,
        size: SizeRange = DEFAULT_SIZE,
        group: GroupPort | None = None,
        receivers: int | None = None,
        idle: float = 1.0,
        outage: float = 0.0,
    ) -> StreamReport:
        """Send ``count`` datagrams at ``rate``/s and report what every receiver saw.

        ``relay``: from the datacenter source through ingress, TCP and egress onto the bridge.
        ``direct``: from the egress host straight onto the bridge (the baseline without a relay).
        ``receivers`` limits how many members listen (default all); the non-member always sniffs.
        ``outage``: the Direct Connect link drops everything for this many seconds, from
        :data:`OUTAGE_AFTER` seconds into the stream (relay path only).
        """
        netns.check_environment()
        state = self.state()
        if outage and path != "relay":
            raise LabError("--outage cuts the link between the relays: it needs --path relay")
        if path == "relay":
            if not state.relay:
                raise LabError(f"lab {self.name!r} was brought up with --no-relay: use --path direct")
            for role in ("ingress", "egress"):
                if not netns.alive(state.pids.get(role, 0) or 0):
                    raise LabError(f"the {role} relay is not running; its log:\n{self.log_tail(role)}")
            group = state.group_port
        with self._streaming():  # the relay counters before and after must be this stream's alone
            before = self.relay_counters() if path == "relay" else {}
            report = self.stream(
                origin="datacenter" if path == "relay" else "aws",
                group=group or state.group_port,
                count=count,
                rate=rate,
                size=size,
                receivers=receivers,
                idle=max(idle, outage + OUTAGE_RECOVERY) if outage else idle,
                outage=outage,
            )
            moved = None
            if path == "relay":
                after = self.relay_counters()
                moved = {
                    key: round(value - before.get(key, 0.0))
                    for key, value in after.items()
                    if value != before.get(key, 0.0)
                }
        return replace(report, path=path, relay=moved)

    def relay_counters(self) -> dict[str, float]:
        """The relays' counters (``ingress.datagrams_in``, ``egress.gaps``...), summed over labels.

        Read from their Prometheus endpoints; a relay that does not answer contributes nothing.
        """
        layout = self.state().layout
        totals: dict[str, float] = {}
        for role, namespace in (("ingress", layout.ns("dc")), ("egress", layout.ns("egress"))):
            url = f"http://127.0.0.1:{METRICS_PORTS[role]}/metrics"
            try:
                text = netns.in_namespace(namespace, [sys.executable, "-c", _SCRAPE, url], timeout=10)
            except LabError:
                continue
            try:
                totals |= counters_from_metrics(role, text)
            except ValueError as err:
                raise LabError(f"the {role} relay's /metrics is not Prometheus text: {err}") from None
        return totals

    def stream(
        self,
        *,
        origin: Site,
        group: GroupPort,
        count: int,
        rate: int,
        size: SizeRange,
        receivers: int | None = None,
        idle: float = 1.0,
        outage: float = 0.0,
    ) -> StreamReport:
        """Send a probe stream from the datacenter source or from the egress host on the AWS
        segment, and collect every receiver's report (whatever carries it in between); with
        ``outage``, the Direct Connect link is dark for that long while it is sent.

        One stream at a time per lab: two would share the receivers' output files.
        """
        state = self.state()  # says so when the lab is not up
        with self._streaming():
            layout = state.layout
            members = [r for r in layout.receivers if r.member][: receivers or layout.members]
            outsider = next(r for r in layout.receivers if not r.member)
            time.sleep(max(0.0, state.snooping_from - time.time()))
            # One id for sender and receivers: datagrams a relay still carries from an earlier
            # stream must not be counted as this one.
            stream_id = str(new_stream_id())
            send_seconds = count / rate if rate else count / 200_000
            listen_seconds = JOIN_WAIT + send_seconds * 2 + 10 + (outage and outage + OUTAGE_RECOVERY)

            spawned: dict[str, int] = {}
            outputs: dict[str, Path] = {}
            # Where datagrams were dropped for want of socket buffer: the receivers, or the ingress host.
            watched = {r.name: r.namespace for r in members} | {"ingress-host": layout.ns("dc")}
            drops_before = {name: udp_receive_buffer_errors(ns) for name, ns in watched.items()}
            try:
                for receiver in members:
                    outputs[receiver.name] = self.run_dir / f"{receiver.name}.out"
                    outputs[receiver.name].unlink(missing_ok=True)
                    spawned[receiver.name] = netns.spawn(
                        receiver.namespace,
                        netns.mcastkit_command(
                            "probe", "recv", "--group", str(group), "--interface", receiver.address,
                            "--count", str(count), "--timeout", f"{listen_seconds:.1f}", "--idle", str(idle),
                            "--max-loss", "1", "--stream-id", stream_id, "--json",
                        ),
                        log=outputs[receiver.name],
                        cpus=state.site_cpus("aws"),
                    )  # fmt: skip
                outputs[outsider.name] = self.run_dir / f"{outsider.name}.out"
                outputs[outsider.name].unlink(missing_ok=True)
                spawned[outsider.name] = netns.spawn(
                    outsider.namespace,
                    [
                        sys.executable,
                        "-m",
                        "mcastkit.lab.sniff",
                        "eth0",
                        group.group,
                        str(group.port),
                        str(listen_seconds),
                    ],
                    log=outputs[outsider.name],
                    cpus=state.site_cpus("aws"),
                )
                # Both ends: each receiver's socket holds the membership (a bridge entry can outlive
                # the previous run's receivers for a few seconds), and the bridge has snooped it.
                wanted = {r.bridge_port for r in members}
                self._wait(
                    lambda: (
                        all(topology.joined_locally(r.namespace, group.group) for r in members)
                        and wanted <= topology.joined_ports(layout.ns("tgw"), group.group)
                    ),
                    f"receivers {sorted(wanted)} to join {group.group} (bridge snooping table)",
                    members[0].name if members else "rx1",
                    timeout=JOIN_WAIT,
                )
                sender_ns, sender_address = (
                    (layout.ns("src"), SOURCE_ADDRESS)
                    if origin == "datacenter"
                    else (layout.ns("egress"), EGRESS_ADDRESS)
                )
                with _dark_link(layout.ns("dx"), after=OUTAGE_AFTER, seconds=outage):
                    sender_output = netns.in_namespace(
                        sender_ns,
                        netns.mcastkit_command(
                            "probe", "send", "--group", str(group), "--interface", sender_address,
                            "--rate", str(rate), "--count", str(count), "--size", str(size), "--ttl", "1",
                            "--stream-id", stream_id, "--json",
                        ),
                        timeout=send_seconds * 4 + 30,
                        cpus=state.site_cpus(origin),
                    )  # fmt: skip
                netns.wait_exit([spawned[r.name] for r in members], listen_seconds + 5)
            finally:
                netns.stop(list(spawned.values()))

            drops = {name: udp_receive_buffer_errors(ns) - drops_before[name] for name, ns in watched.items()}
            frames = (_last_json(_read(outputs[outsider.name])) or {}).get("frames")
            return StreamReport(
                origin=origin,
                group=str(group),
                count=count,
                rate=rate,
                size=str(size),
                cpus=state.cpus,
                sender=_last_json(sender_output) or {},
                members=tuple(
                    Member.from_output(
                        r.name, r.address, _read(outputs[r.name]), topology.igmp_versions(r.namespace)
                    )
                    for r in members
                ),
                outsider=outsider.name,
                outsider_address=outsider.address,
                frames=frames if isinstance(frames, int) else None,
                socket_buffer_drops=drops,
            )

    @contextlib.contextmanager
    def _streaming(self) -> Iterator[None]:
        """Hold the lab's stream lock (already held by this object: nothing more to do)."""
        if self._streaming_now:
            yield
            return
        with (self.run_dir / "stream.lock").open("w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LabError(
                    f"another `lab run` is streaming through lab {self.name!r}: wait for it to finish"
                ) from None
            self._streaming_now = True
            try:
                yield
            finally:
                self._streaming_now = False


@contextlib.contextmanager
def _dark_link(router: str, *, after: float, seconds: float) -> Iterator[None]:
    """Make the Direct Connect router drop everything it would forward (as a link that goes dark
    does: no reset, no ICMP) for ``seconds``, from ``after`` seconds on; the whole outage is
    served even if the body ends first, and forwarding is always restored."""
    if not seconds:
        yield
        return

    def forwarding(on: bool) -> None:
        netns.in_namespace(router, ["sysctl", "-qw", f"net.ipv4.ip_forward={int(on)}"])

    failed: list[LabError] = []

    def go_dark() -> None:
        try:
            forwarding(False)
        except LabError as err:  # raised in the caller's thread, below: a run without its outage
            failed.append(err)

    cut = threading.Timer(after, go_dark)
    ends = time.monotonic() + after + seconds
    cut.start()
    try:
        yield
        time.sleep(max(0.0, ends - time.monotonic()))
    finally:
        cut.cancel()
        cut.join()
        forwarding(True)
    if failed:
        raise LabError(f"the outage did not happen: {failed[0]}")


def udp_receive_buffer_errors(namespace: str) -> int:
    """``Udp: RcvbufErrors`` of ``namespace``: datagrams dropped because a socket buffer was full."""
    lines = [line.split() for line in netns.in_namespace(namespace, ["cat", "/proc/net/snmp"]).splitlines()]
    udp = [fields for fields in lines if fields and fields[0] == "Udp:"]
    if len(udp) < 2 or "RcvbufErrors" not in udp[0]:
        return 0
    return int(udp[1][udp[0].index("RcvbufErrors")])


def counters_from_metrics(role: str, text: str) -> dict[str, float]:
    """The counters of one relay's ``/metrics`` text as ``{role}.{name}``, summed over labels.

    Datagram and event counts only: byte counters are left out. The parser names a counter's
    family without its ``_total`` (``mcastkit_relay_gaps``) and its samples with it; ``_created``
    samples are not counts. Raises ``ValueError`` when ``text`` is not Prometheus text.
    """
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.type != "counter" or "bytes" in family.name:
            continue
        key = f"{role}.{family.name.removeprefix(METRIC_PREFIX)}"
        for sample in family.samples:
            if sample.name == f"{family.name}_total":
                totals[key] = totals.get(key, 0.0) + sample.value
    return totals


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _last_json(text: str) -> dict[str, Any] | None:
    """The last JSON object line of ``text``: what ``probe send --json`` and the sniffer print."""
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    return None


def _listening(namespace: str, port: int) -> bool:
    return bool(netns.in_namespace(namespace, ["ss", "-Htln", f"sport = :{port}"], check=False).strip())


def _connected(namespace: str, port: int) -> bool:
    output = netns.in_namespace(
        namespace, ["ss", "-Htn", "state", "established", f"dport = :{port}"], check=False
    )
    return bool(output.strip())


def _is_ours(pid: int) -> bool:
    """Only signal a recorded pid that still runs an mcastkit command (pids get reused)."""
    try:
        return b"mcastkit" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
