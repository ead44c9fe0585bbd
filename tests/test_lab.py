"""The lab end to end: up, a probe stream through the relay (or direct), down twice, nothing left."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import uuid
from dataclasses import asdict
from pathlib import Path

import pytest
from netns_support import needs_lab, new_namespace

from mcastkit.cli import build_parser, main
from mcastkit.exit import ExitStatus
from mcastkit.lab import netns
from mcastkit.lab.netns import LabError
from mcastkit.lab.session import RUN_ROOT, Lab, LabState, relay_available, split_cpus
from mcastkit.lab.sniff import is_group_datagram
from mcastkit.lab.topology import Layout, parse_igmp_versions
from mcastkit.net.addresses import GroupPort
from mcastkit.probe.wire import SizeRange


def _mcastkit(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcastkit", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _namespaces() -> list[str]:
    output = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in output.splitlines() if line.strip()]


def _in_lab(name: str, host: str, command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", f"{name}-{host}", *command], capture_output=True, text=True, check=False
    )


def _bridge_port_frames(name: str, port: str) -> int:
    """Frames the lab's bridge has received on ``port``."""
    path = f"/sys/class/net/{port}/statistics/rx_packets"
    return int(
        subprocess.run(
            ["ip", "netns", "exec", f"{name}-tgw", "cat", path], capture_output=True, text=True, check=True
        ).stdout
    )


@pytest.mark.netns
@needs_lab
@pytest.mark.timeout(120)
def test_lab_up_run_down() -> None:
    name = f"mckt{uuid.uuid4().hex[:6]}"
    with_relay = relay_available()
    try:
        up = _mcastkit("lab", "up", "--name", name, *([] if with_relay else ["--no-relay"]))
        assert up.returncode == 0, up.stderr
        assert len([ns for ns in _namespaces() if ns.startswith(f"{name}-")]) == 8
        # Each site's processes keep to its own CPUs, as on two hosts.
        state = Lab(name).state()
        assert state.cpus == split_cpus(os.sched_getaffinity(0))
        assert "cpus: " in up.stdout
        for role, site in (("ingress", "datacenter"), ("egress", "aws")):
            if role in state.pids:
                wanted = set(state.cpus.get(site) or os.sched_getaffinity(0))
                assert os.sched_getaffinity(state.pids[role]) == wanted, role
        # Receiving hosts' NICs coalesce bursts (GRO) as real ones do; the bridge runs no iptables.
        for host, device, setting in (
            ("dc", "lan0", "gro=on"),
            ("rx1", "eth0", "gro=on"),
            ("src", "lan0", "tso=off"),
        ):
            shown = _in_lab(name, host, [sys.executable, "-m", "mcastkit.lab.nic", device])
            assert setting in shown.stdout.split(), shown
        bridge_netfilter = _in_lab(name, "tgw", ["cat", "/proc/sys/net/bridge/bridge-nf-call-iptables"])
        assert bridge_netfilter.returncode != 0 or bridge_netfilter.stdout.strip() == "0"

        path = "relay" if with_relay else "direct"
        run = _mcastkit(
            "lab", "run", "--name", name, "--path", path, "--count", "3000", "--rate", "3000", "--json"
        )
        assert run.returncode == 0, run.stdout + run.stderr
        report = json.loads(run.stdout)
        assert report["path"] == path and report["sender"]["sent"] == 3000
        assert report["cpus"] == state.cpus
        members = [r for r in report["receivers"] if r["member"]]
        outsiders = [r for r in report["receivers"] if not r["member"]]
        assert [r["name"] for r in members] == ["rx1", "rx2"]
        for receiver in members:
            assert receiver["unique"] == 3000 and receiver["lost"] == 0, receiver
            assert receiver["duplicates"] == 0
            assert receiver["igmp"] == ["V2"], receiver  # the bootstrap ran in each receiver
            assert receiver["latency_us"]["p50"] is not None
        (outsider,) = outsiders
        assert outsider["frames"] == 0, "the receiver that never joined saw the group: snooping is off"
        assert report["ok"] is True
        if with_relay:
            # The relays' own counters agree with the receivers: every datagram went through them.
            assert report["relay"]["ingress.datagrams_in"] == 3000, report["relay"]
            assert report["relay"]["egress.datagrams_out"] == 3000, report["relay"]

        table = _mcastkit(
            "lab", "run", "--name", name, "--path", "direct", "--count", "500", "--rate", "5000"
        )
        assert table.returncode == 0, table.stdout + table.stderr
        assert "rx1" in table.stdout and "not joined" in table.stdout

        if with_relay:
            # Unpaced bursts reach the ingress coalesced by its host (GRO) and cross as RUN frames.
            burst = _mcastkit(
                "lab", "run", "--name", name, "--count", "2000", "--rate", "0", "--max-loss", "1", "--json"
            )
            assert burst.returncode == 0, burst.stdout + burst.stderr
            counters = json.loads(burst.stdout)["relay"]
            assert counters["ingress.datagrams_in_runs"] > 0, counters
            assert counters["egress.datagrams_in_runs"] == counters["ingress.datagrams_in_runs"], counters

        # Unpaced, the probe sends runs of 32 as one GSO message each: they must still cross
        # the bridge one frame per datagram, as from a real host.
        frames = _bridge_port_frames(name, "egress")
        unpaced = _mcastkit(
            "lab",
            "run",
            "--name",
            name,
            "--path",
            "direct",
            "--count",
            "2000",
            "--rate",
            "0",
            "--max-loss",
            "1",
        )
        assert unpaced.returncode == 0, unpaced.stdout + unpaced.stderr
        assert _bridge_port_frames(name, "egress") - frames >= 2000
    finally:
        first = _mcastkit("lab", "down", "--name", name)
        second = _mcastkit("lab", "down", "--name", name)
    assert first.returncode == 0, first.stderr
    assert "removed 8 namespaces" in first.stdout
    assert second.returncode == 0 and "nothing to remove" in second.stdout
    assert not [ns for ns in _namespaces() if ns.startswith(f"{name}-")]
    assert not (RUN_ROOT / name).exists()
    leftovers = subprocess.run(["pgrep", "-f", f"mcastkit-lab/{name}/"], capture_output=True, text=True)
    assert leftovers.stdout == "", "relay processes survived `lab down`"


@pytest.mark.netns
@needs_lab
def test_run_before_up_says_so() -> None:
    result = _mcastkit("lab", "run", "--name", "mcktnotup")
    assert result.returncode == 3
    assert "lab 'mcktnotup' is not up" in result.stderr and "Traceback" not in result.stderr


def test_bad_lab_name_is_refused() -> None:
    with pytest.raises(LabError, match="'Bad-Name'"):
        Layout("Bad-Name")
    with pytest.raises(LabError, match="receivers 9"):
        Layout("ok", members=9)
    result = _mcastkit("lab", "down", "--name", "../etc")
    assert result.returncode != 0 and "Traceback" not in result.stderr


def test_lab_state_dir_is_per_name(tmp_path: Path) -> None:
    assert Lab("abc", run_root=tmp_path).run_dir == tmp_path / "abc"


def test_a_second_stream_through_one_lab_is_refused_while_the_first_runs(tmp_path: Path) -> None:
    lab = Lab("busy", run_root=tmp_path)
    lab.run_dir.mkdir()
    lab.state_file.write_text(json.dumps(asdict(LabState("busy", 2, "239.1.1.1:5001", relay=True))))
    with (lab.run_dir / "stream.lock").open("w") as first:
        fcntl.flock(first, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a running `lab run` holds
        with pytest.raises(LabError, match="another `lab run` is streaming through lab 'busy'"):
            lab.stream(
                origin="aws", group=GroupPort("239.1.1.1", 5001), count=1, rate=1, size=SizeRange(64, 64)
            )
        if os.geteuid() == 0:  # `run` first checks for root
            with pytest.raises(LabError, match="another `lab run` is streaming through lab 'busy'"):
                lab.run(path="direct", count=1, rate=1)  # before it reads any counter


def test_each_site_gets_half_of_the_cpus_and_one_cpu_is_not_split() -> None:
    assert split_cpus({0}) == {}
    assert split_cpus({1, 0}) == {"datacenter": [0], "aws": [1]}
    assert split_cpus({0, 1, 2}) == {"datacenter": [0], "aws": [1, 2]}
    assert split_cpus({7, 2, 5, 3}) == {"datacenter": [2, 3], "aws": [5, 7]}


def test_a_state_file_from_before_the_cpu_split_reads_as_shared(tmp_path: Path) -> None:
    lab = Lab("old", run_root=tmp_path)
    lab.run_dir.mkdir()
    lab.state_file.write_text(
        json.dumps({"name": "old", "members": 2, "group": "239.1.1.1:5001", "relay": True})
    )
    assert lab.state().cpus == {} and lab.state().site_cpus("aws") is None


def test_a_state_file_from_before_the_gro_option_reads_as_gro_on(tmp_path: Path) -> None:
    lab = Lab("old", run_root=tmp_path)
    lab.run_dir.mkdir()
    lab.state_file.write_text(
        json.dumps({"name": "old", "members": 2, "group": "239.1.1.1:5001", "relay": True, "cpus": {}})
    )
    assert lab.state().gro is True
    # And a state that has it says so after a round trip through the file.
    lab.state_file.write_text(json.dumps(asdict(LabState("old", 2, "239.1.1.1:5001", relay=True, gro=False))))
    assert lab.state().gro is False


def test_lab_up_takes_no_gro_and_defaults_to_gro_on() -> None:
    assert build_parser().parse_args(["lab", "up"]).gro is True
    args = build_parser().parse_args(["lab", "up", "--no-gro", "--shared-cpus"])
    assert args.gro is False and args.shared_cpus is True


@pytest.mark.netns
@needs_lab
def test_processes_started_in_a_namespace_keep_to_the_cpus_given(tmp_path: Path) -> None:
    cpu = max(os.sched_getaffinity(0))
    show = [sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"]
    with new_namespace("cpus") as namespace:
        assert netns.in_namespace(namespace, show, cpus=[cpu]).strip() == f"[{cpu}]"
        assert netns.in_namespace(namespace, show).strip() == str(sorted(os.sched_getaffinity(0)))
        with pytest.raises(LabError, match=r"CPU 100000 is not one this process may use"):
            netns.in_namespace(namespace, show, cpus=[cpu, 100_000])
        log = tmp_path / "spawned.log"
        pid = netns.spawn(namespace, [*show[:2], "import time; time.sleep(0.5)"], log=log, cpus=[cpu])
        try:
            assert os.sched_getaffinity(pid) == {cpu}
        finally:
            netns.stop([pid])


def test_layout_gives_every_receiver_its_own_namespace_and_one_outsider() -> None:
    layout = Layout("lab1", members=3)
    receivers = layout.receivers
    assert [r.member for r in receivers] == [True, True, True, False]
    assert len({r.address for r in receivers}) == 4
    assert all(ns.startswith("lab1-") for ns in layout.namespaces)


def test_parse_proc_net_igmp() -> None:
    table = (
        "Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n"
        "1\tlo        :     1      V3\n\t\t\t\t010000E0     1 0:00000000\t\t0\n"
        "2\teth0      :     2      V2\n\t\t\t\t010101EF     1 0:00000000\t\t1\n"
    )
    assert parse_igmp_versions(table, "eth0") == {"V2"}
    assert parse_igmp_versions(table, "lo") == {"V3"}
    assert parse_igmp_versions(table, "eth1") == set()


def _frame(destination: str, port: int, protocol: int = 17) -> bytes:
    ethernet = b"\x01\x00\x5e\x01\x01\x01" + b"\x02" * 6 + b"\x08\x00"
    ip = bytes([0x45, 0, 0, 48, 0, 0, 0, 0, 1, protocol, 0, 0]) + bytes([10, 0, 0, 1])
    ip += bytes(int(part) for part in destination.split("."))
    udp = (40000).to_bytes(2, "big") + port.to_bytes(2, "big") + b"\x00\x1c\x00\x00"
    return ethernet + ip + udp + b"x" * 20


def test_sniffer_matches_only_the_group_and_port() -> None:
    group = bytes([239, 1, 1, 1])
    assert is_group_datagram(_frame("239.1.1.1", 5001), group, 5001)
    assert not is_group_datagram(_frame("239.1.1.1", 5002), group, 5001)
    assert not is_group_datagram(_frame("239.1.1.2", 5001), group, 5001)
    assert not is_group_datagram(_frame("239.1.1.1", 5001, protocol=6), group, 5001)
    assert not is_group_datagram(b"\x00" * 20, group, 5001)


def test_bad_lab_name_on_the_command_line_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["lab", "down", "--name", "BAD!"])
    assert exited.value.code == ExitStatus.BAD_INPUT
    assert "lab name 'BAD!'" in capsys.readouterr().err


def test_nic_settings_tool_names_what_is_wrong() -> None:
    usage = subprocess.run(
        [sys.executable, "-m", "mcastkit.lab.nic", "lo", "gro=maybe"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert usage.returncode == 2 and "usage: python -m mcastkit.lab.nic IFNAME" in usage.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "mcastkit.lab.nic", "nosuch0"], capture_output=True, text=True, check=False
    )
    assert missing.returncode == 1 and missing.stderr.startswith("nosuch0: No such device")
