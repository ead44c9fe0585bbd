"""The pods' multicast network chain (host-device -> mcastkit-eni-ipam -> tuning), run for real.

The IPAM plugin alone runs against a fake IMDSv2 in this process. The chain runs with Debian's
containernetworking-plugins in three namespaces: the node (holding the multicast ENI, a veth named
as the node's boot step names it, and the fake IMDSv2 on its loopback), the pod, and the wire (the
ENI's far end, standing for the VPC: where the Transit Gateway would hear the pod's IGMP).
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cni_support import IPAM_PLUGIN, NODE_INTERFACES, SYSTEM_PLUGINS, run_chain, run_plugin, serving
from netns_support import needs_netns, new_namespace

from mcastkit.eks.network import (
    DEVICE_NUMBER,
    IPAM_PLUGIN_NAME,
    MULTICAST_ROUTE,
    NODE_DEVICE,
    POD_INTERFACE,
    multicast_network,
)
from mcastkit.lab.topology import parse_igmp_versions

ENI_MAC = next(mac for mac, eni in NODE_INTERFACES.items() if eni["device-number"] == str(DEVICE_NUMBER))
ENI_ADDRESS = "10.20.0.17/24"
GROUP = "239.10.1.3"
PORT = 30003


def _ipam_config(version: str = "0.4.0", **ipam: Any) -> dict[str, Any]:
    return {"cniVersion": version, "name": "mcastkit-multicast", "ipam": {"type": IPAM_PLUGIN_NAME, **ipam}}


def _ipam(
    command: str, config: dict[str, Any], endpoint: str = "http://127.0.0.1:9"
) -> tuple[int, dict[str, Any]]:
    return run_plugin(IPAM_PLUGIN, command, config, {"MCASTKIT_IMDS_ENDPOINT": endpoint})


# --- the IPAM plugin alone --------------------------------------------------------------------


def test_plugin_is_one_python39_stdlib_file() -> None:
    """A node has python3 (3.9 on Amazon Linux 2023) and nothing else of ours: one executable file,
    standard library only, Python 3.9 syntax."""
    source = IPAM_PLUGIN.read_text()
    assert source.startswith("#!/usr/bin/env python3\n")
    assert os.access(IPAM_PLUGIN, os.X_OK)
    tree = ast.parse(source, feature_version=(3, 9))
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in (
            [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        )
    }
    assert imported, "the plugin imports nothing?"
    assert imported <= sys.stdlib_module_names, imported - sys.stdlib_module_names


def test_version() -> None:
    status, output = _ipam("VERSION", {"cniVersion": "1.0.0"})
    assert status == 0
    assert output["supportedVersions"] == ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]


@pytest.mark.parametrize("version", ["0.3.1", "0.4.0", "1.0.0"])
def test_add_gives_the_enis_primary_address_and_the_multicast_route(version: str) -> None:
    with serving(NODE_INTERFACES) as endpoint:
        status, result = _ipam("ADD", _ipam_config(version), endpoint)
    assert status == 0, result
    assert result["cniVersion"] == version
    ip = {"address": ENI_ADDRESS} | ({} if version == "1.0.0" else {"version": "4"})
    assert result["ips"] == [ip]
    # No gateway anywhere: the pod's default route stays on the VPC CNI's eth0.
    assert result["routes"] == [{"dst": MULTICAST_ROUTE}]
    assert "gateway" not in json.dumps(result)


def test_add_reads_the_configured_device_number_and_routes() -> None:
    with serving(NODE_INTERFACES) as endpoint:
        status, result = _ipam("ADD", _ipam_config(deviceNumber=0, routes=["239.0.0.0/8"]), endpoint)
    assert status == 0, result
    assert result["ips"][0]["address"] == "10.20.100.5/24"
    assert result["routes"] == [{"dst": "239.0.0.0/8"}]


def test_imds_down_is_a_try_again_error() -> None:
    status, error = _ipam("ADD", _ipam_config())
    assert status == 1
    assert error["code"] == 11
    assert "instance metadata at http://127.0.0.1:9 did not answer PUT /latest/api/token" in error["msg"]


def test_no_eni_at_the_device_number() -> None:
    with serving(NODE_INTERFACES) as endpoint:
        status, error = _ipam("ADD", _ipam_config(deviceNumber=3), endpoint)
    assert status == 1
    assert error["code"] == 100
    assert error["msg"] == "no ENI at device number 3 on this instance"
    assert "attached device numbers: 0 (0e:00:00:00:00:05), 1 (0e:00:00:00:00:16)" in error["details"]


@pytest.mark.parametrize(
    ("config", "code", "message"),
    [
        (_ipam_config(devicenumber=1), 2, "ipam.devicenumber: unknown field"),
        (_ipam_config(deviceNumber="1"), 7, "ipam.deviceNumber: '1' is not a device number"),
        (_ipam_config(routes="224.0.0.0/4"), 7, "ipam.routes: '224.0.0.0/4' is not a list of CIDRs"),
        (_ipam_config(routes=["224.0.0.0/33"]), 7, "ipam.routes: '224.0.0.0/33' is not an IPv4 CIDR"),
        (_ipam_config("0.2.0"), 1, "cniVersion '0.2.0' is not supported"),
        ({"cniVersion": "0.4.0", "name": "x"}, 7, "network configuration has no ipam object"),
    ],
)
def test_bad_configuration_is_a_cni_error(config: dict[str, Any], code: int, message: str) -> None:
    with serving(NODE_INTERFACES) as endpoint:
        status, error = _ipam("ADD", config, endpoint)
    assert status == 1
    assert error["code"] == code
    assert error["msg"].startswith(message), error


def test_input_that_is_not_json_and_a_missing_command() -> None:
    result = subprocess.run(
        ["env", "CNI_COMMAND=ADD", str(IPAM_PLUGIN)],
        input="{nope",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert json.loads(result.stdout)["code"] == 6
    result = subprocess.run([str(IPAM_PLUGIN)], input="", capture_output=True, text=True, check=False)
    assert result.returncode == 1
    error = json.loads(result.stdout)
    assert error["code"] == 4
    assert "is a CNI plugin, run by the container runtime" in error["details"]


def test_del_always_succeeds() -> None:
    """The address is the ENI's: nothing to release, and a DEL must succeed with the metadata
    service gone or the configuration unreadable (the runtime retries a failed DEL forever)."""
    for config in (_ipam_config(), _ipam_config(devicenumber=1), {}):
        status, output = _ipam("DEL", config)
        assert (status, output) == (0, {})


def test_check_compares_the_previous_result_with_the_eni() -> None:
    with serving(NODE_INTERFACES) as endpoint:
        config = _ipam_config() | {"prevResult": {"ips": [{"version": "4", "address": ENI_ADDRESS}]}}
        assert _ipam("CHECK", config, endpoint) == (0, {})
        moved = _ipam_config() | {"prevResult": {"ips": [{"version": "4", "address": "10.20.0.50/24"}]}}
        status, error = _ipam("CHECK", moved, endpoint)
        assert status == 1
        assert error["code"] == 101
        assert error["msg"] == (
            f"the pod has 10.20.0.50/24 but the ENI {ENI_MAC} at device number 1 now has {ENI_ADDRESS}"
        )
        status, error = _ipam("CHECK", _ipam_config("0.3.1") | {"prevResult": {}}, endpoint)
        assert (status, error["code"]) == (1, 1)


# --- the chain, in network namespaces ---------------------------------------------------------

needs_cni_plugins = pytest.mark.skipif(
    not all((SYSTEM_PLUGINS / plugin).exists() for plugin in ("host-device", "tuning")),
    reason=f"needs host-device and tuning in {SYSTEM_PLUGINS} (Debian's containernetworking-plugins; "
    "make test installs it as root)",
)


@dataclass(frozen=True)
class Node:
    namespace: str
    wire: str
    env: dict[str, str]


def _sh(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=30).stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _node(tmp_path: Path, interfaces: dict[str, dict[str, str]]) -> Iterator[Node]:
    """The node namespace with the ENI (a veth whose far end is in the wire namespace) and the fake
    IMDSv2 on its loopback; the IPAM plugin in a CNI_PATH directory of its own."""
    plugins = tmp_path / "cni-bin"
    plugins.mkdir()
    shutil.copy2(IPAM_PLUGIN, plugins / IPAM_PLUGIN_NAME)
    with new_namespace("node") as node, new_namespace("wire") as wire:
        _sh("ip", "-n", node, "link", "add", NODE_DEVICE, "address", ENI_MAC, "type", "veth",
            "peer", "name", "wire0", "netns", wire)  # fmt: skip
        _sh("ip", "-n", node, "link", "set", NODE_DEVICE, "up")
        _sh("ip", "-n", wire, "link", "set", "wire0", "up")
        _sh("ip", "-n", wire, "address", "add", "10.20.0.1/24", "dev", "wire0")
        port = _free_port()
        imds = subprocess.Popen(
            ["ip", "netns", "exec", node, sys.executable, str(Path(__file__).parent / "cni_support.py"),
             str(port), json.dumps(interfaces)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert imds.stdout is not None and imds.stdout.readline().strip() == "ready"
            env = {
                "CNI_CONTAINERID": "mcastkit-test",
                "CNI_IFNAME": POD_INTERFACE,
                "CNI_PATH": f"{plugins}:{SYSTEM_PLUGINS}",
                "MCASTKIT_IMDS_ENDPOINT": f"http://127.0.0.1:{port}",
            }
            yield Node(namespace=node, wire=wire, env=env)
        finally:
            imds.terminate()
            imds.wait(10)


@contextmanager
def _pod(*, created_while_node_forced: bool) -> Iterator[str]:
    """A pod namespace. A new namespace copies IPv4 ``all``/``default`` from the initial namespace
    (the EKS node's own), so the initial namespace's force_igmp_version is set for the instant the
    pod is created: 2 as on a node forced before the pod, 0 (IGMPv3) as on one forced after."""
    paths = [Path(f"/proc/sys/net/ipv4/conf/{entry}/force_igmp_version") for entry in ("all", "default")]
    saved = [path.read_text() for path in paths]
    try:
        for path in paths:
            path.write_text("2" if created_while_node_forced else "0")
        context = new_namespace("pod")
        pod = context.__enter__()
    finally:
        for path, value in zip(paths, saved, strict=True):
            path.write_text(value)
    try:
        yield pod
    finally:
        context.__exit__(None, None, None)


def _chain(
    node: Node, pod: str, command: str, *, igmpv2: bool = True, previous: dict[str, Any] | None = None
):
    env = node.env | {"CNI_NETNS": f"/run/netns/{pod}"}
    return run_chain(multicast_network(igmpv2=igmpv2), command, env, node=node.namespace, previous=previous)


JOIN_SEND_LEAVE = """
import socket, sys, time
group, port, address = sys.argv[1], int(sys.argv[2]), sys.argv[3]
receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
receiver.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
receiver.bind((group, port))
membership = socket.inet_aton(group) + socket.inet_aton(address)
receiver.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
print(open("/proc/net/igmp").read(), end="", flush=True)
print("joined", flush=True)
receiver.settimeout(10)
data, source = receiver.recvfrom(2048)
print("received", data.decode(), source[0], flush=True)
sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 8)
sender.sendto(b"from-the-pod", (group, port))  # no IP_MULTICAST_IF: the 224.0.0.0/4 route picks net1
time.sleep(0.2)
receiver.setsockopt(socket.IPPROTO_IP, socket.IP_DROP_MEMBERSHIP, membership)
time.sleep(0.5)
print("left", flush=True)
"""


@dataclass(frozen=True)
class Session:
    proc_net_igmp: str
    received: str
    igmp_on_the_wire: list[dict[str, str]]
    group_frames_on_the_wire: int


def _sniffer(namespace: str, *args: str) -> subprocess.Popen[str]:
    sniffer = subprocess.Popen(
        ["ip", "netns", "exec", namespace, sys.executable, "-m", "mcastkit.lab.sniff", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert sniffer.stderr is not None and sniffer.stderr.readline().strip() == "listening"
    return sniffer


def _stopped(sniffer: subprocess.Popen[str]) -> dict[str, Any]:
    sniffer.send_signal(signal.SIGTERM)
    output, _ = sniffer.communicate(timeout=10)
    return dict(json.loads(output))


SEND_FROM_THE_WIRE = f"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("10.20.0.1"))
s.sendto(b"to-the-pod", ("{GROUP}", {PORT}))
"""


def _join_send_leave(node: Node, pod: str) -> Session:
    """In the pod, join GROUP on the ENI's address, receive a datagram the wire sends, send one
    back, leave; meanwhile the wire records the IGMP messages and the pod's datagram."""
    igmp = _sniffer(node.wire, "igmp", "wire0", "30")
    frames = _sniffer(node.wire, "wire0", GROUP, str(PORT), "30")
    member = subprocess.Popen(
        ["ip", "netns", "exec", pod, sys.executable, "-c", JOIN_SEND_LEAVE, GROUP, str(PORT),
         ENI_ADDRESS.split("/")[0]],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert member.stdout is not None
        table = []
        for line in member.stdout:
            if line.strip() == "joined":
                break
            table.append(line)
        _sh("ip", "netns", "exec", node.wire, sys.executable, "-c", SEND_FROM_THE_WIRE)
        output, errors = member.communicate(timeout=30)
        assert member.returncode == 0, errors
        assert "left" in output.splitlines()
    finally:
        member.kill()
        igmp_seen, frames_seen = _stopped(igmp), _stopped(frames)
    return Session(
        proc_net_igmp="".join(table),
        received=next((line for line in output.splitlines() if line.startswith("received")), ""),
        igmp_on_the_wire=igmp_seen["igmp"],
        group_frames_on_the_wire=frames_seen["frames"],
    )


def _links(namespace: str) -> dict[str, dict[str, Any]]:
    return {link["ifname"]: link for link in json.loads(_sh("ip", "-j", "-n", namespace, "link", "show"))}


def _v2_only(session: Session) -> bool:
    kinds = {message["type"] for message in session.igmp_on_the_wire}
    return "v2-report" in kinds and "v3-report" not in kinds


@pytest.mark.netns
@needs_netns
@needs_cni_plugins
@pytest.mark.parametrize(
    "created_while_node_forced", [False, True], ids=["pod-before-node-forced", "pod-after"]
)
def test_pod_gets_the_eni_with_igmpv2_in_either_order(
    tmp_path: Path, created_while_node_forced: bool
) -> None:
    with (
        _node(tmp_path, NODE_INTERFACES) as node,
        _pod(created_while_node_forced=created_while_node_forced) as pod,
    ):
        status, result = _chain(node, pod, "ADD")
        assert status == 0, result
        assert result["interfaces"][0]["name"] == POD_INTERFACE
        assert [ip["address"] for ip in result["ips"]] == [ENI_ADDRESS]

        # The ENI itself is in the pod, under the pod's name, with its MAC and the ENI's address.
        assert NODE_DEVICE not in _links(node.namespace)
        pod_link = _links(pod)[POD_INTERFACE]
        assert pod_link["address"] == ENI_MAC
        addresses = json.loads(_sh("ip", "-j", "-n", pod, "address", "show", "dev", POD_INTERFACE))
        assert [
            f"{a['local']}/{a['prefixlen']}" for a in addresses[0]["addr_info"] if a["family"] == "inet"
        ] == [ENI_ADDRESS]
        routes = json.loads(_sh("ip", "-j", "-n", pod, "route", "show"))
        assert {"dst": "224.0.0.0/4", "dev": POD_INTERFACE} in [
            {k: r.get(k) for k in ("dst", "dev")} for r in routes
        ]
        assert not [r for r in routes if r["dst"] == "default"], "no gateway: the default route stays on eth0"
        for entry in ("all", "default"):
            forced = _sh(
                "ip", "netns", "exec", pod, "cat", f"/proc/sys/net/ipv4/conf/{entry}/force_igmp_version"
            )
            assert forced.strip() == "2", entry

        session = _join_send_leave(node, pod)
        assert parse_igmp_versions(session.proc_net_igmp, POD_INTERFACE) == {"V2"}
        assert _v2_only(session), session.igmp_on_the_wire
        assert {"type": "v2-report", "destination": GROUP} in session.igmp_on_the_wire
        assert {"type": "v2-leave", "destination": "224.0.0.2"} in session.igmp_on_the_wire
        assert session.received == "received to-the-pod 10.20.0.1"
        assert session.group_frames_on_the_wire == 1, "the pod's datagram leaves by the ENI"

        status, result = _chain(node, pod, "CHECK", previous=result)
        assert status == 0, result
        status, output = _chain(node, pod, "DEL", previous=result)
        assert status == 0, output
        # The ENI is back on the node, under its own name and MAC, ready for the next pod.
        assert _links(node.namespace)[NODE_DEVICE]["address"] == ENI_MAC
        assert POD_INTERFACE not in _links(pod)


@pytest.mark.netns
@needs_netns
@needs_cni_plugins
def test_without_tuning_a_pod_created_before_the_node_was_forced_joins_with_igmpv3(tmp_path: Path) -> None:
    """The control: what the tuning step fixes. Without it the pod's reports are IGMPv3, which
    the Transit Gateway does not hear."""
    with _node(tmp_path, NODE_INTERFACES) as node, _pod(created_while_node_forced=False) as pod:
        status, result = _chain(node, pod, "ADD", igmpv2=False)
        assert status == 0, result
        session = _join_send_leave(node, pod)
        assert parse_igmp_versions(session.proc_net_igmp, POD_INTERFACE) == {"V3"}
        assert {"type": "v3-report", "destination": "224.0.0.22"} in session.igmp_on_the_wire
        assert not _v2_only(session)
        assert _chain(node, pod, "DEL", igmpv2=False, previous=result)[0] == 0


@pytest.mark.netns
@needs_netns
@needs_cni_plugins
@pytest.mark.parametrize(
    ("interfaces", "code", "message"),
    [
        (None, 11, "did not answer PUT /latest/api/token"),
        ({"0e:00:00:00:00:05": NODE_INTERFACES["0e:00:00:00:00:05"]}, 100, "no ENI at device number 1"),
    ],
    ids=["imds-down", "no-eni-at-device-1"],
)
def test_failed_add_is_a_cni_error_and_del_returns_the_eni(
    tmp_path: Path, interfaces: dict[str, dict[str, str]] | None, code: int, message: str
) -> None:
    with _node(tmp_path, interfaces or {}) as node, _pod(created_while_node_forced=True) as pod:
        if interfaces is None:
            node = Node(
                node.namespace, node.wire, node.env | {"MCASTKIT_IMDS_ENDPOINT": "http://127.0.0.1:9"}
            )
        status, error = _chain(node, pod, "ADD")
        assert status != 0
        assert error["code"] == code, error
        assert message in error["msg"]
        # host-device has already moved the ENI when IPAM fails, and leaves it in the pod; the
        # runtime's DEL after a failed ADD (containerd and Multus both send one) brings it back.
        assert _chain(node, pod, "DEL")[0] == 0
        assert _links(node.namespace)[NODE_DEVICE]["address"] == ENI_MAC
