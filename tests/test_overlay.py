"""`mcastkit overlay`: VXLAN with head-end replication between hosts on an underlay that carries no
multicast (a bridge with multicast flooding off, standing for a VPC), in network namespaces."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from netns_support import needs_netns, new_namespace

from mcastkit.cli import Console, main
from mcastkit.config import load_overlays
from mcastkit.exit import ExitStatus
from mcastkit.overlay import firewall
from mcastkit.overlay.unit import systemd_unit

GROUP, PORT = "239.77.1.1", 40001
OUTSIDE = "239.77.9.9"
HOSTS = {"h1": ("10.88.0.1", "10.99.0.1"), "h2": ("10.88.0.2", "10.99.0.2"), "h3": ("10.88.0.3", "10.99.0.3")}


def overlay_file(
    tmp: Path,
    hosts: dict[str, tuple[str, str]] = HOSTS,
    per_host: dict[str, dict[str, str]] | None = None,
    **extra: Any,
) -> Path:
    """A file of one overlay, ``md``, carrying GROUP:PORT between ``hosts`` (``per_host``: more
    fields of a host, as YAML; ``extra`` overrides or adds fields of the overlay)."""
    fields = {"name": "md", "vni": 4242, "cidr": "10.99.0.0/24", **extra}
    lines = ["overlays:", f"  - name: {fields.pop('name')}"]
    lines += [f"    {key}: {value}" for key, value in fields.items()]
    lines += [f"    groups: [{GROUP}:{PORT}]", "    hosts:"]
    for name, (underlay, address) in hosts.items():
        more = "".join(f", {key}: {value}" for key, value in (per_host or {}).get(name, {}).items())
        lines.append(f"      - {{name: {name}, underlay: {underlay}, address: {address}{more}}}")
    path = tmp / "overlay.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


# ---- without a network: the file, the unit, the filter --------------------------------------


def _cli(*args: str) -> tuple[int, str, str]:
    console = Console(out=io.StringIO(), err=io.StringIO())
    status = main(list(args), console)
    return status, console.out.getvalue(), console.err.getvalue()


def test_a_file_with_a_host_twice_is_one_line_per_problem(tmp_path: Path) -> None:
    bad = dict(HOSTS, h3=("10.88.0.2", "10.99.0.3"))
    status, out, err = _cli("overlay", "up", "--file", str(overlay_file(tmp_path, bad)), "--host", "h1")
    assert status == ExitStatus.BAD_INPUT and out == ""
    assert "overlays[0].hosts[2].underlay: 10.88.0.2 is also the underlay address of host h2" in err
    assert "Traceback" not in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("hosts", "extra", "says"),
    [
        (
            dict(HOSTS, h3=("10.88.0.3", "10.98.0.3")),
            {},
            "hosts[2].address: 10.98.0.3 is outside the overlay's cidr",
        ),
        (
            dict(HOSTS, h3=("10.99.0.9", "10.99.0.3")),
            {},
            "hosts[2].underlay: 10.99.0.9 is inside the overlay's own",
        ),
        (HOSTS, {"name": "marketdata12"}, "overlays[0].name: must be 1-11"),
        (HOSTS, {"vni": 0}, "overlays[0].vni"),
        (
            HOSTS,
            {"per_host": {"h3": {"receives": f"[{OUTSIDE}]"}}},
            f"overlays[0].hosts[2].receives[0]: {OUTSIDE} is not a group of overlay md ({GROUP}): no "
            "frame of it would reach the host; add it to the overlay's groups, or name one of them",
        ),
        (
            HOSTS,
            {"per_host": {"h2": {"receives": f"[{GROUP}, {GROUP}]"}}},
            f"hosts[1].receives[1]: {GROUP} is listed twice",
        ),
        (
            HOSTS,
            {"wireguard": "{cidr: 10.98.0.0/16}"},
            "overlays[0].wireguard.cidr: 10.98.0.0/16 is a /16, the overlay's cidr 10.99.0.0/24 a /24",
        ),
        (HOSTS, {"wireguard": "{cidr: 10.99.0.0/24}"}, "overlaps the overlay's cidr 10.99.0.0/24"),
        (
            HOSTS,
            {"wireguard": "{cidr: 10.98.0.0/24, port: 4789}"},
            "overlays[0].wireguard.port: UDP 4789 is also the overlay's VXLAN port",
        ),
        (
            HOSTS,
            {"wireguard": "{cidr: 10.88.0.0/24}"},
            "hosts[0].underlay: 10.88.0.1 is inside the WireGuard cidr 10.88.0.0/24",
        ),
        (
            HOSTS,
            {"per_host": {"h1": {"public_key": "nope"}}},
            "overlays[0].hosts[0].public_key: must be a WireGuard public key",
        ),
        (
            HOSTS,
            {
                "wireguard": "{cidr: 10.98.0.0/24}",
                "per_host": {"h1": {"public_key": "A" * 43 + "="}, "h3": {"public_key": "A" * 43 + "="}},
            },
            "overlays[0].hosts[2].public_key: the public key of host h1 again",
        ),
        (
            HOSTS,
            {"wireguard": f"{{cidr: 10.98.0.0/24, port: {PORT}}}"},
            f"overlays[0].groups[0]: {GROUP}:{PORT}: its port is the overlay's WireGuard port {PORT}",
        ),
    ],
    ids=[
        "address-outside-cidr",
        "underlay-inside-overlay",
        "name-too-long-for-a-device",
        "vni-zero",
        "receives-a-group-outside-the-overlay",
        "receives-a-group-twice",
        "wireguard-cidr-another-length",
        "wireguard-cidr-overlaps-the-overlay",
        "wireguard-on-the-vxlan-port",
        "underlay-inside-the-wireguard-cidr",
        "public-key-not-a-key",
        "public-key-twice",
        "group-on-the-wireguard-port",
    ],
)
def test_a_bad_overlay_is_refused_naming_the_field(
    tmp_path: Path, hosts: dict[str, tuple[str, str]], extra: dict[str, Any], says: str
) -> None:
    path = overlay_file(tmp_path, hosts, **extra)
    status, _, err = _cli("overlay", "status", "--file", str(path))
    assert status == ExitStatus.BAD_INPUT and says in err, err


def test_a_group_outside_the_multicast_range_is_refused(tmp_path: Path) -> None:
    path = overlay_file(tmp_path)
    path.write_text(path.read_text().replace(f"{GROUP}:{PORT}", "10.1.1.1:5000"))
    status, _, err = _cli("overlay", "up", "--file", str(path), "--host", "h1")
    assert status == ExitStatus.BAD_INPUT and "overlays[0].groups[0]" in err and "10.1.1.1" in err, err


def test_an_unknown_host_or_overlay_name_is_one_line(tmp_path: Path) -> None:
    path = str(overlay_file(tmp_path))
    status, _, err = _cli("overlay", "unit", "--file", path, "--host", "h9")
    assert status == ExitStatus.BAD_INPUT and err.strip().endswith(
        "--host h9: not a host of overlay md (h1, h2, h3)"
    )
    status, _, err = _cli("overlay", "unit", "--file", path, "--name", "other", "--host", "h1")
    assert status == ExitStatus.BAD_INPUT and "--name other: no such overlay (md)" in err


def test_the_unit_brings_the_host_up_at_boot_and_down_at_stop(tmp_path: Path) -> None:
    path = overlay_file(tmp_path)
    [overlay] = load_overlays(path)
    unit = systemd_unit(
        overlay, overlay.host("h2"), executable="/usr/bin/mcastkit", source=["--file", str(path)]
    )
    assert f"ExecStart=/usr/bin/mcastkit overlay up --file {path} --name md --host h2" in unit
    assert "Restart=on-failure" in unit
    assert f"ExecStop=/usr/bin/mcastkit overlay down --file {path} --name md --host h2" in unit
    assert "After=network-online.target" in unit and "WantedBy=multi-user.target" in unit


def test_the_unit_of_a_wireguard_host_names_where_its_key_is(tmp_path: Path) -> None:
    [overlay] = load_overlays(overlay_file(tmp_path, wireguard="{cidr: 10.98.0.0/24}"))
    unit = systemd_unit(
        overlay, overlay.host("h1"), executable="/usr/bin/mcastkit", source=["--file", "/etc/o.yaml"],
        key_dir=Path("/srv/keys"),
    )  # fmt: skip
    assert (
        "ExecStart=/usr/bin/mcastkit overlay up --file /etc/o.yaml --name md --host h1 --key-dir /srv/keys"
        in unit
    )
    assert "ExecStop=/usr/bin/mcastkit overlay down --file /etc/o.yaml --name md --host h1\n" in unit


def test_a_wireguard_overlays_security_group_opens_wireguards_port_only(tmp_path: Path) -> None:
    from aws_cdk import App, Stack
    from aws_cdk import aws_ec2 as ec2
    from aws_cdk.assertions import Template

    from mcastkit.constructs.overlay_peers import OverlayPeers

    [overlay] = load_overlays(overlay_file(tmp_path, wireguard="{cidr: 10.98.0.0/24, port: 51999}"))
    stack = Stack(App(), "Overlay")
    isolated = ec2.SubnetConfiguration(name="hosts", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
    vpc = ec2.Vpc(stack, "Vpc", max_azs=1, nat_gateways=0, subnet_configuration=[isolated])
    OverlayPeers(stack, "Peers", vpc=vpc, overlay=overlay)
    [group] = Template.from_stack(stack).find_resources("AWS::EC2::SecurityGroup").values()
    rules = group["Properties"]["SecurityGroupIngress"] + group["Properties"]["SecurityGroupEgress"]
    assert {(r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in rules} == {("udp", 51999, 51999)}
    assert sorted(r["CidrIp"] for r in group["Properties"]["SecurityGroupIngress"]) == [
        f"{underlay}/32" for underlay, _ in HOSTS.values()
    ]
    # What forces a new group (and a stuck delete while instances wear the old one) stays put.
    assert group["Properties"]["GroupDescription"] == "mcastkit overlay md: UDP between its hosts"


def test_only_the_overlays_groups_and_control_leave_and_only_its_hosts_come_in(tmp_path: Path) -> None:
    [overlay] = load_overlays(overlay_file(tmp_path))
    out, inbound = firewall.chains(overlay, overlay.host("h1"))
    assert out.jump == ("OUTPUT", "-o", "mck-md", "-j", "MCK-MD-OUT")
    assert out.rules == (
        ("-p", "2", "-j", "RETURN"),
        ("-d", "224.0.0.0/24", "-j", "RETURN"),
        ("-p", "udp", "-d", f"{GROUP}/32", "--dport", str(PORT), "-j", "RETURN"),
        ("-d", "224.0.0.0/4", "-j", "DROP"),
    )
    assert inbound.jump == ("INPUT", "-p", "udp", "--dport", "4789", "-j", "MCK-MD-IN")
    assert inbound.rules == (
        ("-s", "10.88.0.2/32", "-j", "RETURN"),
        ("-s", "10.88.0.3/32", "-j", "RETURN"),
        ("-j", "DROP"),
    )


# ---- in network namespaces -------------------------------------------------------------------


@dataclass
class Net:
    vpc: str
    hosts: dict[str, str]  # name -> namespace
    file: Path
    #: Each host's own /run/wireguard (where wireguard-go keeps its control socket): hosts are
    #: separate machines, but these namespaces share one file system.
    run_dirs: dict[str, Path]

    def mcastkit(self, host: str, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        private_run = 'mount --bind "$0" /run/wireguard && exec "$@"'
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", private_run,
                   str(self.run_dirs[host]), "ip", "netns", "exec", self.hosts[host], sys.executable, "-m",
                   "mcastkit", *args]  # fmt: skip
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=check)

    def overlay(self, host: str, action: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.mcastkit(host, "overlay", action, "--file", str(self.file), *extra)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    with ExitStack() as stack:
        vpc = stack.enter_context(new_namespace("ovl-vpc"))
        _ip("-n", vpc, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        _ip("-n", vpc, "link", "set", "br0", "up")
        hosts = {}
        for name, (underlay, _) in HOSTS.items():
            namespace = stack.enter_context(new_namespace(f"ovl-{name}"))
            _ip(
                "-n",
                namespace,
                "link",
                "add",
                "eth0",
                "type",
                "veth",
                "peer",
                "name",
                f"p{name}",
                "netns",
                vpc,
            )
            _ip("-n", namespace, "address", "add", f"{underlay}/24", "dev", "eth0")
            _ip("-n", namespace, "link", "set", "eth0", "up")
            _ip("-n", vpc, "link", "set", f"p{name}", "master", "br0", "up")
            # A VPC carries no multicast: the underlay floods none to any port.
            _ip("-n", vpc, "link", "set", "dev", f"p{name}", "type", "bridge_slave", "mcast_flood", "off")
            hosts[name] = namespace
        Path("/run/wireguard").mkdir(mode=0o700, exist_ok=True)
        run_dirs = {name: tmp_path / f"run-{name}" for name in HOSTS}
        for run_dir in run_dirs.values():
            run_dir.mkdir()
        # h3 receives no group: it only sends (and answers its peers).
        yield Net(vpc, hosts, overlay_file(tmp_path, per_host={"h3": {"receives": "[]"}}), run_dirs)


_RECEIVE = textwrap.dedent(
    """
    import json, socket, struct, sys, time
    group, port, address, join = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "join"
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("", port))
    if join:
        membership = socket.inet_aton(group) + socket.inet_aton(address)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    print("ready", flush=True)
    sock.settimeout(0.5)
    got, deadline = [], time.monotonic() + float(sys.argv[5])
    while time.monotonic() < deadline:
        try:
            got.append(sock.recv(2048).decode())
        except socket.timeout:
            pass
    print(json.dumps(got))
    """
)

_SEND = textwrap.dedent(
    """
    import socket, sys, time
    group, port, address, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(address))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    refused = 0
    for i in range(count):
        try:
            sock.sendto(f"m{i}".encode(), (group, port))
        except PermissionError:  # a firewall rule refused it
            refused += 1
        time.sleep(0.001)
    print(refused)
    """
)


def _receiver(
    net: Net, host: str, *, join: bool, seconds: float = 3.0, underlay: bool = False
) -> subprocess.Popen[str]:
    """Receives GROUP:PORT for ``seconds`` (joined on its overlay address, or its underlay's)."""
    address = HOSTS[host][0 if underlay else 1]
    process = subprocess.Popen(
        ["ip", "netns", "exec", net.hosts[host], sys.executable, "-c", _RECEIVE, GROUP, str(PORT), address,
         "join" if join else "no", str(seconds)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


def _received(process: subprocess.Popen[str]) -> list[str]:
    out, _ = process.communicate(timeout=30)
    return list(json.loads(out.strip().splitlines()[-1]))


def _send(net: Net, host: str, address: str, count: int, group: str = GROUP) -> int:
    """Send ``count`` datagrams to ``group``; return how many the host refused to send."""
    command = ["ip", "netns", "exec", net.hosts[host], sys.executable, "-c", _SEND, group, str(PORT), address]
    done = subprocess.run([*command, str(count)], check=True, timeout=30, capture_output=True, text=True)
    return int(done.stdout.strip())


def _status(net: Net, host: str, *extra: str) -> tuple[int, dict[str, Any]]:
    done = net.overlay(host, "status", "--host", host, "--json", *extra)
    return done.returncode, json.loads(done.stdout)


@pytest.mark.netns
@needs_netns
@pytest.mark.timeout(120)
def test_multicast_crosses_only_by_the_overlay_and_reaches_only_hosts_that_joined(net: Net) -> None:
    # Control: on the underlay alone, a join on h2 hears nothing h1 sends (no flooding, no router).
    before = _receiver(net, "h2", join=True, seconds=1.5, underlay=True)
    _send(net, "h1", HOSTS["h1"][0], 50)
    assert _received(before) == []

    for host in HOSTS:
        done = net.overlay(host, "up", "--host", host)
        assert done.returncode == 0, done.stderr
        assert "mck-md: VXLAN 4242" in done.stdout and "peer" in done.stdout
    status, h1 = _status(net, "h1", "--no-check")
    assert status == 0 and h1["receivers"] == {GROUP: ["h2"]}, h1
    _, h3_before = _status(net, "h3", "--no-check")
    joined = _receiver(net, "h2", join=True)
    # h3 joins too, but the config says it receives no group: h1 replicates the group to h2 only.
    bystander = _receiver(net, "h3", join=True)
    _send(net, "h1", HOSTS["h1"][1], 200)
    assert _received(joined) == [f"m{i}" for i in range(200)]
    assert _received(bystander) == []
    status, h3 = _status(net, "h3", "--no-check")
    # None of the 200 frames reached h3's device (what it did get is its own peers' control).
    assert status == 0 and h3["traffic"]["rx_packets"] - h3_before["traffic"]["rx_packets"] < 20


@pytest.mark.netns
@needs_netns
@pytest.mark.timeout(120)
def test_up_and_down_are_idempotent_and_status_finds_a_peer_that_is_gone(net: Net) -> None:
    for host in HOSTS:
        assert net.overlay(host, "up", "--host", host).returncode == 0
    again = net.overlay("h1", "up", "--host", "h1")
    assert again.returncode == 0 and again.stdout.strip() == "overlay md on h1: up, nothing changed"
    status, h1 = _status(net, "h1")
    assert status == 0, h1
    assert [(p["name"], p["replicated"], p["reachable"]) for p in h1["peers"]] == [
        ("h2", True, True), ("h3", True, True),
    ]  # fmt: skip
    assert h1["groups_routed"] == [GROUP] and h1["igmpv2"] is True and h1["mtu"] == 1450

    down = net.overlay("h3", "down", "--host", "h3")
    assert down.returncode == 0 and "mck-md: removed" in down.stdout
    assert net.overlay("h3", "down", "--host", "h3").stdout.strip() == "overlay md: nothing to remove"
    status, h1 = _status(net, "h1")
    assert status == 1 and [p["reachable"] for p in h1["peers"]] == [True, False]
    assert any("peer h3 at 10.88.0.3 does not answer across the overlay" in p for p in h1["problems"])
    status, h3 = _status(net, "h3")
    assert status == 1 and h3["up"] is False


@pytest.mark.netns
@needs_netns
@pytest.mark.timeout(120)
def test_a_group_outside_the_overlay_is_dropped_and_counted(net: Net) -> None:
    for host in ("h1", "h2"):
        assert net.overlay(host, "up", "--host", host).returncode == 0
    # The sender is told at once (EPERM from the filter), and the overlay carries none of it.
    assert _send(net, "h1", HOSTS["h1"][1], 30, group=OUTSIDE) == 30
    status, h1 = _status(net, "h1", "--no-check")
    assert status == 1 and h1["outside_groups"] == 30
    assert any("30 datagrams to groups outside the overlay were dropped" in p for p in h1["problems"])


@pytest.mark.netns
@needs_netns
@pytest.mark.timeout(120)
def test_a_host_removed_from_the_config_or_its_group_is_no_longer_replicated_to(net: Net) -> None:
    assert net.overlay("h1", "up", "--host", "h1").returncode == 0
    lines = net.file.read_text().splitlines(keepends=True)
    net.file.write_text("".join(line for line in lines if "name: h3," not in line))
    done = net.overlay("h1", "up", "--host", "h1")
    assert done.returncode == 0 and "mck-md: peer at 10.88.0.3 removed" in done.stdout
    _, h1 = _status(net, "h1", "--no-check")
    assert [p["name"] for p in h1["peers"]] == ["h2"] and h1["receivers"] == {GROUP: ["h2"]}
    # h2 stops receiving the group: h1 keeps it as a peer, but sends it the group no more.
    net.file.write_text(
        net.file.read_text().replace("address: 10.99.0.2}", "address: 10.99.0.2, receives: []}")
    )
    done = net.overlay("h1", "up", "--host", "h1")
    assert (
        "mck-md: 01:00:5e:4d:01:01 to 10.88.0.2 removed (the config no longer sends it there)" in done.stdout
    )
    status, h1 = _status(net, "h1", "--no-check")
    assert status == 0 and h1["receivers"] == {GROUP: []} and h1["peers"][0]["replicated"] is True
    assert (
        f"{GROUP} replicated to: no peer" in net.overlay("h1", "status", "--host", "h1", "--no-check").stdout
    )


@pytest.mark.netns
@needs_netns
@pytest.mark.timeout(120)
def test_a_peer_that_moved_to_another_underlay_address_is_reached_there(net: Net) -> None:
    # An instance replaced keeps its overlay address and gets another private IP.
    assert net.overlay("h1", "up", "--host", "h1").returncode == 0
    net.file.write_text(net.file.read_text().replace("underlay: 10.88.0.3,", "underlay: 10.88.0.33,"))
    done = net.overlay("h1", "up", "--host", "h1")
    assert done.returncode == 0, done.stderr
    assert "mck-md: peer h3 at 10.88.0.33" in done.stdout
    show = ["ip", "netns", "exec", net.hosts["h1"], "bridge", "-j", "fdb", "show", "dev", "mck-md"]
    fdb = subprocess.run(show, capture_output=True, text=True, check=True)
    h3 = {e["dst"] for e in json.loads(fdb.stdout) if e["mac"] == "02:00:0a:63:00:03"}
    assert h3 == {"10.88.0.33"}
    _, h1 = _status(net, "h1", "--no-check")
    assert [p["replicated"] for p in h1["peers"]] == [True, True], h1["problems"]


@pytest.mark.netns
@needs_netns
def test_a_machine_that_is_none_of_the_hosts_is_told_to_name_itself(net: Net) -> None:
    done = net.mcastkit("h1", "overlay", "up", "--file", str(net.file))
    assert done.returncode == 0, done.stderr  # h1 found by its underlay address
    stranger = net.file.read_text().replace("10.88.0.1", "10.88.0.9")
    net.file.write_text(stranger)
    done = net.mcastkit("h1", "overlay", "up", "--file", str(net.file))
    assert done.returncode == 2 and "this machine has none of its hosts' underlay addresses" in done.stderr
    assert "pass --host NAME" in done.stderr and "Traceback" not in done.stderr


# ---- in AWS: the security group of the overlay's hosts in a VPC -------------------------------


def test_the_network_stack_makes_the_overlays_security_group_where_it_has_a_host(example_app: Any) -> None:
    from aws_cdk.assertions import Template

    london = Template.from_stack(example_app.stacks["eu-west-2"].network).to_json()
    groups = [
        r["Properties"]
        for r in london["Resources"].values()
        if r["Type"] == "AWS::EC2::SecurityGroup" and "overlay md-dc" in r["Properties"]["GroupDescription"]
    ]
    assert len(groups) == 1
    [group] = groups
    peers = {"10.20.50.200/32", "192.168.40.20/32"}
    assert {
        (r["IpProtocol"], r["FromPort"], r["ToPort"], r["CidrIp"]) for r in group["SecurityGroupIngress"]
    } == {("udp", 4789, 4789, cidr) for cidr in peers}
    assert {(r["IpProtocol"], r["FromPort"], r["CidrIp"]) for r in group["SecurityGroupEgress"]} == {
        ("udp", 4789, cidr) for cidr in peers
    }
    assert "OverlayMdDcSecurityGroupId" in london["Outputs"]
    # Tokyo's VPC has no host of the overlay: no group there.
    tokyo = Template.from_stack(example_app.stacks["ap-northeast-1"].network).to_json()
    descriptions = [
        r["Properties"].get("GroupDescription", "")
        for r in tokyo["Resources"].values()
        if r["Type"] == "AWS::EC2::SecurityGroup"
    ]
    assert descriptions and not any("overlay" in d for d in descriptions)


@pytest.mark.netns
@needs_netns
@pytest.mark.timeout(120)
def test_an_accept_rule_before_it_does_not_bypass_the_filter_and_status_sees_it_gone(net: Net) -> None:
    h1 = net.hosts["h1"]
    # A distribution's firewall that accepts new UDP first (as ufw does).
    iptables = ["ip", "netns", "exec", h1, "iptables", "-w"]
    subprocess.run([*iptables, "-I", "OUTPUT", "1", "-p", "udp", "-j", "ACCEPT"], check=True)
    for host in ("h1", "h2"):
        assert net.overlay(host, "up", "--host", host).returncode == 0
    assert _send(net, "h1", HOSTS["h1"][1], 10, group=OUTSIDE) == 10
    # Someone flushes the jump away: status says so, and up puts it back first.
    subprocess.run([*iptables, "-D", "OUTPUT", "-o", "mck-md", "-j", "MCK-MD-OUT"], check=True)
    status, found = _status(net, "h1", "--no-check")
    assert status == 1 and any(
        "filter MCK-MD-OUT is missing or not first in OUTPUT" in p for p in found["problems"]
    )
    again = net.overlay("h1", "up", "--host", "h1")
    assert "filter MCK-MD-OUT: jumped to first from OUTPUT" in again.stdout
    status, found = _status(net, "h1", "--no-check")
    assert status == 0 and found["outside_groups"] == 0, found  # counted since this up


# ---- WireGuard under the overlay ---------------------------------------------------------------

TUNNEL = "10.98.0.0/24"
needs_wireguard = pytest.mark.skipif(
    shutil.which("wg") is None or shutil.which("wireguard-go") is None,
    reason="needs wireguard-tools and wireguard-go (make test installs them with apt-get)",
)

_SNIFF = textwrap.dedent(
    """
    import collections, json, socket, struct, sys, time
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    sock.bind((sys.argv[1], 0))
    sock.settimeout(0.2)
    ports, deadline = collections.Counter(), time.monotonic() + float(sys.argv[2])
    print("ready", flush=True)
    while time.monotonic() < deadline:
        try:
            frame = sock.recv(65535)
        except socket.timeout:
            continue
        if frame[12:14] == b"\\x08\\x00" and frame[23] == 17:
            header = (frame[14] & 0x0F) * 4
            ports[struct.unpack("!H", frame[14 + header + 2 : 14 + header + 4])[0]] += 1
    print(json.dumps(ports))
    """
)


def _wireguard_overlay(net: Net, tmp: Path, **extra: Any) -> dict[str, Path]:
    """Make ``net``'s overlay a WireGuard one: each host makes its key, the file gets the public
    keys. Returns each host's key directory."""
    fields = {"wireguard": f"{{cidr: {TUNNEL}}}", "mtu": 1390, **extra}
    per_host: dict[str, dict[str, str]] = {"h3": {"receives": "[]"}}
    net.file = overlay_file(tmp, per_host=per_host, **fields)
    key_dirs = {host: tmp / f"keys-{host}" for host in HOSTS}
    for host, key_dir in key_dirs.items():
        done = net.overlay(host, "key", "--host", host, "--key-dir", str(key_dir))
        assert done.returncode == 0 and "private key" in done.stderr and "made" in done.stderr, done.stderr
        assert oct((key_dir / "md.key").stat().st_mode & 0o777) == "0o600"
        per_host.setdefault(host, {})["public_key"] = done.stdout.strip()
    net.file = overlay_file(tmp, per_host=per_host, **fields)
    return key_dirs


def _sniffer(net: Net, host: str, seconds: float) -> subprocess.Popen[str]:
    """UDP packets by destination port on ``host``'s port of the VPC stand-in, for ``seconds``."""
    process = subprocess.Popen(
        ["ip", "netns", "exec", net.vpc, sys.executable, "-c", _SNIFF, f"p{host}", str(seconds)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


@pytest.mark.netns
@needs_netns
@needs_wireguard
@pytest.mark.timeout(180)
def test_wireguard_carries_the_overlay_and_no_vxlan_crosses_the_underlay(net: Net, tmp_path: Path) -> None:
    key_dirs = _wireguard_overlay(net, tmp_path)
    for host in HOSTS:
        done = net.overlay(host, "up", "--host", host, "--key-dir", str(key_dirs[host]))
        assert done.returncode == 0, done.stderr
        assert (
            "mcw-md: WireGuard (" in done.stdout
            and f"mck-md: VXLAN 4242 from 10.98.0.{host[1]}" in done.stdout
        )
    again = net.overlay("h1", "up", "--host", "h1", "--key-dir", str(key_dirs["h1"]))
    assert again.stdout.strip() == "overlay md on h1: up, nothing changed", again.stdout
    wire = _sniffer(net, "h1", 4.0)
    joined = _receiver(net, "h2", join=True)
    bystander = _receiver(net, "h3", join=True)
    _send(net, "h1", HOSTS["h1"][1], 200)
    assert _received(joined) == [f"m{i}" for i in range(200)]
    assert _received(bystander) == []
    ports = {
        int(k): v for k, v in json.loads(wire.communicate(timeout=30)[0].strip().splitlines()[-1]).items()
    }
    # On the underlay: WireGuard only, at least one packet per datagram; VXLAN never in clear.
    assert ports.get(4789, 0) == 0 and ports.get(51820, 0) >= 200, ports
    status, h1 = _status(net, "h1")
    assert status == 0, h1["problems"]
    assert [(p["name"], p["reachable"], p["handshake_age"] is not None) for p in h1["peers"]] == [
        ("h2", True, True), ("h3", True, True),
    ]  # fmt: skip
    assert h1["peers"][0]["tunnel_tx_bytes"] > 200 * 64

    # The config drops WireGuard: h1's tunnel goes, and its VXLAN runs between underlay addresses.
    net.file.write_text(
        "".join(line for line in net.file.read_text().splitlines(True) if "wireguard:" not in line)
    )
    done = net.overlay("h1", "up", "--host", "h1")
    assert "mcw-md: removed (the overlay has no wireguard section any more)" in done.stdout, done.stdout
    assert "mck-md: VXLAN 4242 from 10.88.0.1" in done.stdout
    for _ in range(2):
        down = net.overlay("h2", "down", "--host", "h2")
        assert down.returncode == 0
    assert "mcw-md: removed" in net.overlay("h3", "down", "--host", "h3").stdout
    gone = subprocess.run(["ip", "-n", net.hosts["h3"], "link", "show", "mcw-md"], capture_output=True)
    assert gone.returncode != 0 and not (net.run_dirs["h3"] / "mcw-md.sock").exists()


@pytest.mark.netns
@needs_netns
@needs_wireguard
@pytest.mark.timeout(120)
def test_vxlan_in_clear_from_the_underlay_does_not_reach_a_wireguard_overlay(
    net: Net, tmp_path: Path
) -> None:
    key_dirs = _wireguard_overlay(net, tmp_path)
    for host in ("h1", "h2"):
        assert net.overlay(host, "up", "--host", host, "--key-dir", str(key_dirs[host])).returncode == 0
    joined = _receiver(net, "h2", join=True, seconds=2.0)
    # h3 (not up) forges what h1's VXLAN would carry and sends it to h2's VXLAN port in clear.
    forge = textwrap.dedent(
        """
        import socket, struct, sys
        group, port = sys.argv[1], int(sys.argv[2])
        payload = b"forged"
        udp = struct.pack("!HHHH", 40000, port, 8 + len(payload), 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 1, 17, 0,
                         socket.inet_aton("10.99.0.1"), socket.inet_aton(group))
        words = struct.unpack("!10H", ip)
        total = sum(words); total = (total >> 16) + (total & 0xFFFF); total += total >> 16
        ip = ip[:10] + struct.pack("!H", ~total & 0xFFFF) + ip[12:]
        low = socket.inet_aton(group)
        to_group = b"\\x01\\x00\\x5e" + bytes([low[1] & 0x7F]) + low[2:]
        ether = to_group + b"\\x02\\x00\\x0a\\x63\\x00\\x01" + b"\\x08\\x00"  # from h1's MAC
        vxlan = struct.pack("!II", 0x08000000, 4242 << 8)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(10):
            sock.sendto(vxlan + ether + ip + udp, ("10.88.0.2", 4789))
        """
    )
    subprocess.run(["ip", "netns", "exec", net.hosts["h3"], sys.executable, "-c", forge, GROUP, str(PORT)],
                   check=True, timeout=30)  # fmt: skip
    assert _received(joined) == []
    _, h2 = _status(net, "h2", "--no-check")
    assert h2["strangers"] == 10, h2
    assert any("did not come through WireGuard" in p for p in h2["problems"])


@pytest.mark.netns
@needs_netns
@needs_wireguard
@pytest.mark.timeout(120)
def test_a_wireguard_overlay_with_a_key_missing_wrong_or_no_room_is_refused_in_one_line(
    net: Net, tmp_path: Path
) -> None:
    key_dirs = _wireguard_overlay(net, tmp_path)
    text = net.file.read_text()
    keys = {host: line.split("public_key: ")[1].rstrip("}") for host in HOSTS for line in text.splitlines()
            if f"name: {host}," in line}  # fmt: skip
    # h2's key left out: h1 cannot name it as a peer.
    net.file.write_text(text.replace(f", public_key: {keys['h2']}", ""))
    done = net.overlay("h1", "up", "--host", "h1", "--key-dir", str(key_dirs["h1"]))
    assert done.returncode == 2 and done.stderr.strip().endswith(
        "overlay md: host h2 has no public_key; run `mcastkit overlay key` on h2 and put the key it prints "
        "in the config as its public_key"
    ), done.stderr
    # h1's entry carries another key than h1's own (a stale copy of the config).
    net.file.write_text(text.replace(keys["h1"], "A" * 43 + "="))
    done = net.overlay("h1", "up", "--host", "h1", "--key-dir", str(key_dirs["h1"]))
    assert (
        done.returncode == 2 and f"but its key at {key_dirs['h1'] / 'md.key'} is {keys['h1']}" in done.stderr
    )
    # A host with no key made yet.
    net.file.write_text(text)
    done = net.overlay("h1", "up", "--host", "h1", "--key-dir", str(tmp_path / "nowhere"))
    assert (
        done.returncode == 2
        and "no WireGuard key at" in done.stderr
        and "mcastkit overlay key" in done.stderr
    )
    # The default MTU does not fit VXLAN inside WireGuard on a 1500-byte underlay.
    net.file.write_text(text.replace("mtu: 1390", "mtu: 1450"))
    done = net.overlay("h1", "up", "--host", "h1", "--key-dir", str(key_dirs["h1"]))
    assert (
        done.returncode == 2 and "mtu 1450 needs 1560 bytes" in done.stderr and "1390 or less" in done.stderr
    )
    assert all("Traceback" not in d for d in (done.stderr,)) and len(done.stderr.strip().splitlines()) == 1
