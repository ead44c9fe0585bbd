"""bootstrap/igmpv2.sh for real: in a fresh network namespace, IGMPv2 on every interface,
including one created after the script ran, as /proc/net/igmp reports it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from netns_support import add_veth, needs_netns, new_namespace

from mcastkit.lab.topology import BOOTSTRAP_IGMPV2, joined_locally, parse_igmp_versions

SCRIPT = BOOTSTRAP_IGMPV2
#: Joins a group on an interface address and stays joined until stdin closes.
JOIN_AND_WAIT = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
request = socket.inet_aton(sys.argv[1]) + socket.inet_aton(sys.argv[2])
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, request)
print("joined", flush=True)
sys.stdin.read()
"""


def _run_script(env: dict[str, str], *prefix: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, "env", *(f"{key}={value}" for key, value in env.items()), "bash", str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture
def namespace() -> Iterator[str]:
    with new_namespace("bs") as name:
        yield name


def _in(namespace: str, *command: str) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", namespace, *command], capture_output=True, text=True, check=True, timeout=30
    ).stdout


def _igmp_version_when_joined(namespace: str, device: str, address: str, group: str) -> set[str]:
    joiner = subprocess.Popen(
        ["ip", "netns", "exec", namespace, sys.executable, "-c", JOIN_AND_WAIT, group, address],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert joiner.stdout is not None and joiner.stdout.readline().strip() == "joined"
        assert joined_locally(namespace, group)
        return parse_igmp_versions(_in(namespace, "cat", "/proc/net/igmp"), device)
    finally:
        assert joiner.stdin is not None
        joiner.stdin.close()
        joiner.wait(10)


def _forced(namespace: str, entry: str) -> str:
    return _in(namespace, "cat", f"/proc/sys/net/ipv4/conf/{entry}/force_igmp_version").strip()


@pytest.mark.netns
@needs_netns
def test_igmpv2_on_existing_and_later_interfaces(namespace: str) -> None:
    # Start from the kernel default (IGMPv3) whatever the host has, and prove the control case.
    for entry in ("all", "default"):
        _in(namespace, "sysctl", "-qw", f"net.ipv4.conf.{entry}.force_igmp_version=0")
    add_veth(namespace, "before0", "10.201.0.1")
    for device in ("lo", "before0", "before0p"):
        _in(namespace, "sysctl", "-qw", f"net.ipv4.conf.{device}.force_igmp_version=0")
    assert _igmp_version_when_joined(namespace, "before0", "10.201.0.1", "239.7.7.1") == {"V3"}

    result = _run_script({"MCASTKIT_SYSCTL_CONF": ""}, "ip", "netns", "exec", namespace)
    assert result.returncode == 0, result.stderr
    assert "force_igmp_version=2" in result.stdout
    assert "persisted" not in result.stdout

    # An interface created after the script, as an ECS task ENI or a veth would be.
    add_veth(namespace, "after0", "10.202.0.1")
    for entry in ("all", "default", "lo", "before0", "after0"):
        assert _forced(namespace, entry) == "2", entry
    assert _igmp_version_when_joined(namespace, "before0", "10.201.0.1", "239.7.7.2") == {"V2"}
    assert _igmp_version_when_joined(namespace, "after0", "10.202.0.1", "239.7.7.3") == {"V2"}
    assert parse_igmp_versions(_in(namespace, "cat", "/proc/net/igmp"), "lo") == {"V2"}


def _fake_proc_tree(root: Path, interfaces: list[str]) -> Path:
    for name in ["all", "default", *interfaces]:
        (root / name).mkdir(parents=True)
        (root / name / "force_igmp_version").write_text("0\n")
    return root


def test_persisted_conf_content(tmp_path: Path) -> None:
    proc = _fake_proc_tree(tmp_path / "conf", ["eth0", "ecs-eth0"])
    conf = tmp_path / "etc" / "sysctl.d" / "90-mcastkit-igmpv2.conf"
    result = _run_script({"MCASTKIT_SYSCTL_CONF": str(conf), "MCASTKIT_PROC_CONF": str(proc)})
    assert result.returncode == 0, result.stderr
    lines = [line for line in conf.read_text().splitlines() if line and not line.startswith("#")]
    assert lines == [
        "net.ipv4.conf.all.force_igmp_version = 2",
        "net.ipv4.conf.default.force_igmp_version = 2",
    ]
    for name in ("all", "default", "eth0", "ecs-eth0"):
        assert (proc / name / "force_igmp_version").read_text().strip() == "2", name
    assert f"persisted in {conf}" in result.stdout
    assert "on 4 entries" in result.stdout


def test_missing_proc_tree_fails_clearly(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-proc"
    conf = tmp_path / "sysctl.conf"
    result = _run_script({"MCASTKIT_SYSCTL_CONF": str(conf), "MCASTKIT_PROC_CONF": str(missing)})
    assert result.returncode != 0
    assert f"{missing} not found" in result.stderr
    assert not conf.exists()
