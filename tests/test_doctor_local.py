"""The doctor's local checks against fake /proc trees, and its packet parser against hand-built packets.

No root, no network namespace, no capture: every reader takes a root directory, and the live
probes (socket options, the packet socket, commands in namespaces) are replaced.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mcastkit.cli import build_parser
from mcastkit.doctor import Diagnosis, DoctorOptions, Finding, Host, Severity, diagnose
from mcastkit.doctor.capture import Traffic, capture_traffic, traffic_findings
from mcastkit.doctor.findings import DiagnosisError
from mcastkit.doctor.igmp_table import parse_igmp_table
from mcastkit.doctor.igmp_version import forced_version, igmp_version_findings
from mcastkit.doctor.membership import membership_findings
from mcastkit.doctor.namespaces import doctor_in
from mcastkit.doctor.offload import UdpOffloads, offload_findings, probe_udp_offloads
from mcastkit.doctor.procfs import ProcFs, kernel_address
from mcastkit.doctor.route_table import parse_route_table
from mcastkit.doctor.routing import default_interface, route_findings
from mcastkit.doctor.rp_filter import rp_filter_findings
from mcastkit.errors import BadInput, EnvironmentFailure
from mcastkit.lab.sniff import igmp_message, is_group_datagram
from mcastkit.net.addresses import GroupPort
from mcastkit.net.frames import ipv4_in_ethernet, ipv4_packet, udp_destination_port

#: `cat /proc/net/igmp` on the development machine (x86-64) with two sockets joined: 239.10.10.1 on
#: eth0 and 239.10.1.3 on lo; both interfaces unforced, so V3.
REAL_IGMP = (
    "Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n"
    "1\tlo        :     2      V3\n"
    "\t\t\t\t03010AEF     1 0:00000000\t\t0\n"
    "\t\t\t\t010000E0     1 0:00000000\t\t0\n"
    "4\teth0      :     2      V3\n"
    "\t\t\t\t010A0AEF     1 0:00000000\t\t0\n"
    "\t\t\t\t010000E0     1 0:00000000\t\t0\n"
)
#: `cat /proc/net/route` on the same machine: a default route and the connected /24, both on eth0.
REAL_ROUTE = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
)
G1 = GroupPort("239.10.1.3", 30003)
G2 = GroupPort("239.10.1.4", 30004)


def _igmp(devices: dict[str, tuple[str, Sequence[str]]]) -> str:
    """/proc/net/igmp as a little-endian kernel prints it: device -> (querier, groups)."""
    lines = ["Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter"]
    for index, (name, (querier, groups)) in enumerate(devices.items(), start=1):
        lines.append(f"{index}\t{name:<10}: {len(groups) + 1:5d} {querier:>7}")
        for group in [*groups, "224.0.0.1"]:
            number = int.from_bytes(socket.inet_aton(group), "little")
            lines.append(f"\t\t\t\t{number:08X}     1 0:00000000\t\t0")
    return "\n".join(lines) + "\n"


def _route(interface: str, network: str, gateway: str = "0.0.0.0", metric: int = 0) -> str:
    net = ipaddress.IPv4Network(network)

    def hexed(address: object) -> str:
        return f"{int.from_bytes(socket.inet_aton(str(address)), 'little'):08X}"

    return (
        f"{interface}\t{hexed(net.network_address)}\t{hexed(gateway)}\t0003\t0\t0\t{metric}\t"
        f"{hexed(net.netmask)}\t0\t0\t0"
    )


#: eth0 the primary ENI with the default route, eth1 the multicast ENI (10.20.0.0/24).
TWO_ENIS = "\n".join(
    [
        REAL_ROUTE.splitlines()[0],
        _route("eth0", "0.0.0.0/0", "10.20.50.1"),
        _route("eth0", "10.20.50.0/24"),
        _route("eth1", "10.20.0.0/24"),
    ]
)


class Tree:
    """A fake root: proc/sys/net/ipv4/conf/<entry>/<key>, proc/net/igmp, proc/net/route..."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for entry in ("all", "default", "lo", "eth0", "eth1"):
            self.conf(entry, force_igmp_version="0", rp_filter="0")
        self.write("proc/net/igmp", _igmp({}))
        self.write("proc/net/route", TWO_ENIS)
        self.write("proc/sys/kernel/osrelease", "6.1.0-test\n")

    def write(self, relative: str, text: str) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def conf(self, entry: str, **values: str) -> None:
        for key, value in values.items():
            self.write(f"proc/sys/net/ipv4/conf/{entry}/{key}", f"{value}\n")

    @property
    def proc(self) -> ProcFs:
        return ProcFs(self.root)

    def host(self, **probes: Any) -> Host:
        """The tree with the live probes replaced: no socket option is asked, unless ``probes`` say."""
        offloads = probes.pop("udp_offloads", lambda: UdpOffloads(gso=None, gro=None))
        return Host(proc=self.proc, udp_offloads=offloads, **probes)


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path)


def _one(findings: list[Finding], check: str, subject_part: str = "") -> Finding:
    matching = [f for f in findings if f.check == check and subject_part in f.subject]
    assert len(matching) == 1, [f.line() for f in findings]
    return matching[0]


# /proc/net/igmp


def test_the_real_igmp_table_reads_as_the_groups_joined() -> None:
    table = parse_igmp_table(REAL_IGMP, "little")
    assert list(table.devices) == ["lo", "eth0"]
    assert table.devices["eth0"].groups == ["239.10.10.1", "224.0.0.1"]
    assert table.devices["eth0"].data_groups == ["239.10.10.1"]
    assert table.devices["lo"].data_groups == ["239.10.1.3"]
    assert table.devices["eth0"].querier == "V3" and table.devices["eth0"].index == 4
    assert table.holders("239.10.1.3") == ["lo"]
    assert table.unreadable == ()


def test_a_big_endian_kernel_prints_the_group_in_network_order() -> None:
    assert kernel_address("010A0AEF", "little") == "239.10.10.1"
    assert kernel_address("EF0A0A01", "big") == "239.10.10.1"
    table = parse_igmp_table("2\teth1      :     1      V2\n\t\t\t\tEF0A0103     1 1:0000001A\t\t1\n", "big")
    membership = table.devices["eth1"].memberships[0]
    assert membership.group == "239.10.1.3" and membership.timer_running and membership.reporter


def test_a_long_interface_name_and_a_v2_querier_are_read() -> None:
    text = _igmp({"veth1234abcdef": ("V2", ["239.10.1.3"])})
    device = parse_igmp_table(text, "little").devices["veth1234abcdef"]
    assert device.querier == "V2" and device.data_groups == ["239.10.1.3"]


def test_malformed_igmp_lines_are_kept_apart_and_the_rest_is_read() -> None:
    text = (
        "\t\t\t\t010A0AEF     1 0:00000000\t\t0\n"  # a group before any device
        "garbage line\n" + _igmp({"eth1": ("V3", ["239.10.1.3"])}) + "\t\t\t\tZZZZ     1 0:00000000\t\t0\n"
    )
    table = parse_igmp_table(text, "little")
    assert table.devices["eth1"].data_groups == ["239.10.1.3"]
    assert len(table.unreadable) == 3 and "garbage line" in table.unreadable
    assert parse_igmp_table("", "little").devices == {}


# Check 1: the IGMP version


@pytest.mark.parametrize(
    ("all_value", "own", "expected"),
    [(0, 0, None), (2, 0, 2), (0, 2, 2), (2, 2, 2), (1, 2, 1), (2, 1, 1), (None, 2, 2), (None, None, None)],
)
def test_the_kernel_forces_v1_before_v2_and_either_entry_counts(
    all_value: int | None, own: int | None, expected: int | None
) -> None:
    assert forced_version(all_value, own) == expected


def test_v3_in_effect_is_a_problem_with_the_sysctl_fix(tree: Tree) -> None:
    tree.write("proc/net/igmp", _igmp({"eth1": ("V3", ["239.10.1.3"])}))
    finding = igmp_version_findings(tree.proc, parse_igmp_table(_igmp({}), "little"), "eth1")[0]
    assert finding.severity is Severity.PROBLEM and finding.subject == "eth1 IGMP version"
    assert "IGMPv3 is in effect (force_igmp_version all=0, eth1=0, default=0)" in finding.message
    assert finding.fix.startswith(
        "sysctl -w net.ipv4.conf.all.force_igmp_version=2 net.ipv4.conf.eth1.force_igmp_version=2 "
        "net.ipv4.conf.default.force_igmp_version=2"
    )


def test_v2_forced_by_all_is_ok(tree: Tree) -> None:
    tree.conf("all", force_igmp_version="2")
    tree.conf("default", force_igmp_version="2")
    table = parse_igmp_table(_igmp({"eth1": ("V2", ["239.10.1.3"])}), "little")
    findings = igmp_version_findings(tree.proc, table, "eth1")
    assert [f.severity for f in findings] == [Severity.OK]
    assert "IGMPv2 is forced (force_igmp_version all=2, eth1=0" in findings[0].message


def test_v2_forced_on_the_interface_only_warns_about_interfaces_created_later(tree: Tree) -> None:
    tree.conf("eth1", force_igmp_version="2")
    findings = igmp_version_findings(tree.proc, parse_igmp_table("", "little"), "eth1")
    assert [f.severity for f in findings] == [Severity.OK, Severity.WARN]
    assert findings[1].subject == "interfaces created later"
    assert (
        findings[1].fix
        == "sysctl -w net.ipv4.conf.all.force_igmp_version=2 net.ipv4.conf.default.force_igmp_version=2"
    )


def test_v1_on_the_interface_beats_v2_on_all(tree: Tree) -> None:
    tree.conf("all", force_igmp_version="2")
    tree.conf("eth1", force_igmp_version="1")
    finding = igmp_version_findings(tree.proc, parse_igmp_table("", "little"), "eth1")[0]
    assert finding.severity is Severity.PROBLEM and "IGMPv1 is forced" in finding.message


def test_an_unreadable_setting_is_named_and_not_taken_for_v2(tree: Tree) -> None:
    tree.conf("eth1", force_igmp_version="two")
    finding = igmp_version_findings(tree.proc, parse_igmp_table("", "little"), "eth1")[0]
    assert finding.severity is Severity.PROBLEM and "eth1=unreadable" in finding.message


def test_v2_heard_from_a_querier_without_forcing_is_still_a_problem(tree: Tree) -> None:
    table = parse_igmp_table(_igmp({"eth1": ("V2", ["239.10.1.3"])}), "little")
    finding = igmp_version_findings(tree.proc, table, "eth1")[0]
    assert finding.severity is Severity.PROBLEM
    assert "/proc/net/igmp shows V2" in finding.message and "V2 for now only" in finding.message


def test_a_vlan_interface_gets_the_slash_form_of_the_sysctl(tree: Tree) -> None:
    tree.conf("eth0.100", force_igmp_version="0")
    finding = igmp_version_findings(tree.proc, parse_igmp_table("", "little"), "eth0.100")[0]
    assert "net/ipv4/conf/eth0.100/force_igmp_version=2" in finding.fix


def test_another_interface_holding_groups_in_v3_is_a_warning(tree: Tree) -> None:
    tree.conf("eth1", force_igmp_version="2")
    table = parse_igmp_table(_igmp({"eth0": ("V3", ["239.1.1.1"]), "lo": ("V3", ["239.2.2.2"])}), "little")
    findings = igmp_version_findings(tree.proc, table, "eth1")
    eth0 = _one(findings, "igmp-version", "eth0")
    assert eth0.severity is Severity.WARN and "eth0 holds 239.1.1.1 and speaks IGMPv3" in eth0.message
    assert not [f for f in findings if "lo" in f.subject]  # loopback never faces a Transit Gateway


# Check 2: the memberships


def test_a_group_joined_on_the_interface_is_ok() -> None:
    table = parse_igmp_table(_igmp({"eth1": ("V2", [G1.group])}), "little")
    (finding,) = membership_findings(table, "eth1", [G1])
    assert finding.severity is Severity.OK and finding.subject == "239.10.1.3 on eth1"


def test_a_group_nobody_joined_is_a_problem_that_says_why() -> None:
    table = parse_igmp_table(_igmp({"eth1": ("V2", [G2.group])}), "little")
    (finding,) = membership_findings(table, "eth1", [G1])
    assert finding.severity is Severity.PROBLEM
    assert finding.message.startswith("no socket on this host joined 239.10.1.3 on eth1")
    assert "the receiver does not join (tools like tcpdump and nc do not)" in finding.message
    assert "mcastkit probe recv --passive --group 239.10.1.3:30003 --interface eth1" in finding.fix


def test_a_group_joined_on_another_interface_names_it() -> None:
    table = parse_igmp_table(_igmp({"eth0": ("V3", [G1.group]), "eth1": ("V2", [])}), "little")
    (finding,) = membership_findings(table, "eth1", [G1])
    assert finding.severity is Severity.PROBLEM
    assert "but one did on eth0: the receiver joined on the wrong interface" in finding.message
    assert "ip route add 239.10.1.3/32 dev eth1" in finding.fix


def test_without_groups_each_interface_reports_what_it_holds() -> None:
    table = parse_igmp_table(_igmp({"eth0": ("V3", ["239.1.1.1", "239.1.1.2"])}), "little")
    findings = membership_findings(table, "eth1", [])
    assert [(f.severity, f.subject) for f in findings] == [
        (Severity.WARN, "eth1 memberships"),
        (Severity.OK, "eth0 memberships"),
    ]
    assert findings[1].message == "joined 239.1.1.1, 239.1.1.2"


# Check 3: routes


def test_the_real_route_table_and_the_longest_prefix() -> None:
    routes = parse_route_table(REAL_ROUTE, "little")
    assert [str(r) for r in routes.routes] == ["default via 192.0.2.1 dev eth0", "192.0.2.0/24 dev eth0"]
    assert routes.route_for("192.0.2.9") == routes.routes[1]
    assert routes.route_for("239.1.1.1") == routes.routes[0]
    assert routes.default_interfaces() == ["eth0"]


def test_a_group_routed_by_another_interface_is_a_warning_naming_both() -> None:
    routes = parse_route_table(TWO_ENIS, "little")
    (finding,) = route_findings(routes, "eth1", [G1])
    assert finding.severity is Severity.WARN
    assert "the kernel routes it by eth0 (default via 10.20.50.1 dev eth0), not eth1" in finding.message
    assert "ip route add 239.10.1.3/32 dev eth1" in finding.fix


def test_a_multicast_route_on_the_interface_wins_over_the_default() -> None:
    routes = parse_route_table(TWO_ENIS + "\n" + _route("eth1", "224.0.0.0/4"), "little")
    (finding,) = route_findings(routes, "eth1", [G1])
    assert finding.severity is Severity.OK and "224.0.0.0/4 dev eth1" in finding.message
    assert default_interface(routes, [G1]) == (
        "eth1",
        "the kernel routes 239.10.1.3 by it (224.0.0.0/4 dev eth1)",
    )


def test_without_a_route_and_without_interface_is_bad_input() -> None:
    with pytest.raises(BadInput, match="--interface not given, and no route for multicast"):
        default_interface(parse_route_table(REAL_ROUTE.splitlines()[0], "little"), [])


def test_an_unreadable_route_line_is_reported() -> None:
    routes = parse_route_table(REAL_ROUTE + "eth9\tnothex\n", "little")
    findings = route_findings(routes, "eth0", [])
    assert findings[0].severity is Severity.WARN and "'eth9\\tnothex'" in findings[0].message
    assert findings[1].severity is Severity.OK


# Check 4: rp_filter


def test_strict_rp_filter_off_the_default_route_warns_with_the_loose_fix(tree: Tree) -> None:
    tree.conf("eth1", rp_filter="1")
    routes = parse_route_table(TWO_ENIS, "little")
    (finding,) = rp_filter_findings(tree.proc, routes, "eth1", [])
    assert finding.severity is Severity.WARN
    assert "strict (rp_filter all=0, eth1=1), and the default route leaves by eth0" in finding.message
    assert finding.fix.startswith("sysctl -w net.ipv4.conf.eth1.rp_filter=2")


def test_loose_on_the_interface_wins_over_strict_on_all(tree: Tree) -> None:
    tree.conf("all", rp_filter="1")
    tree.conf("eth1", rp_filter="2")
    (finding,) = rp_filter_findings(tree.proc, parse_route_table(TWO_ENIS, "little"), "eth1", [])
    assert finding.severity is Severity.OK and finding.message.startswith("loose")


def test_strict_rp_filter_against_known_sources(tree: Tree) -> None:
    tree.conf("all", rp_filter="1")
    routes = parse_route_table(TWO_ENIS, "little")
    near, far = ipaddress.IPv4Network("10.20.0.15/32"), ipaddress.IPv4Network("10.30.0.0/24")
    findings = rp_filter_findings(tree.proc, routes, "eth1", [near, far])
    assert [f.severity for f in findings] == [Severity.OK, Severity.PROBLEM]
    assert (
        "drops multicast from 10.30.0.0/24 arriving on eth1: the route back leaves by eth0"
        in findings[1].message
    )


def test_strict_rp_filter_on_the_default_route_interface_is_ok(tree: Tree) -> None:
    tree.conf("eth0", rp_filter="1")
    (finding,) = rp_filter_findings(tree.proc, parse_route_table(TWO_ENIS, "little"), "eth0", [])
    assert finding.severity is Severity.OK and "the default route leaves by eth0" in finding.message


# Check 6: UDP offloads


def test_offloads_missing_are_warnings_naming_the_kernel() -> None:
    findings = offload_findings(UdpOffloads(gso="Protocol not available", gro=None), "4.14.0")
    assert [(f.severity, f.subject) for f in findings] == [(Severity.WARN, "UDP GSO")]
    assert "kernel 4.14.0 refuses UDP_SEGMENT (Protocol not available)" in findings[0].message
    assert offload_findings(UdpOffloads(None, None), "6.1")[0].severity is Severity.OK


def test_this_kernel_is_asked_for_real() -> None:
    offloads = probe_udp_offloads()
    assert offloads.gso is None or isinstance(offloads.gso, str)
    assert offloads.gro is None or isinstance(offloads.gro, str)


# Check 5: the packet parser and what a capture saw


def _packet(
    destination: str,
    *,
    source: str = "10.20.0.15",
    ttl: int = 8,
    protocol: int = 17,
    port: int = 30003,
    igmp: int | None = None,
) -> bytes:
    """An IPv4 packet (no link header): UDP to ``port``, or IGMP of type ``igmp`` with Router Alert."""
    options = b"\x94\x04\x00\x00" if igmp is not None else b""
    header = bytes(
        [0x40 | (20 + len(options)) // 4, 0, 0, 0, 0, 0, 0, 0, ttl, 2 if igmp is not None else protocol]
    )
    header += b"\x00\x00" + socket.inet_aton(source) + socket.inet_aton(destination) + options
    if igmp is not None:
        return header + bytes([igmp, 0, 0, 0]) + socket.inet_aton(destination)
    return header + (40000).to_bytes(2, "big") + port.to_bytes(2, "big") + b"\x00\x10\x00\x00" + b"x" * 8


def test_the_parser_reads_ttl_protocol_addresses_and_port() -> None:
    packet = ipv4_packet(_packet("239.10.1.3", ttl=1))
    assert packet is not None
    assert (packet.ttl, packet.protocol, packet.source_address, packet.destination_address) == (
        1,
        17,
        "10.20.0.15",
        "239.10.1.3",
    )
    assert udp_destination_port(packet) == 30003
    ethernet = b"\x01\x00\x5e\x0a\x01\x03" + b"\x02" * 6 + b"\x08\x00"
    framed = ipv4_in_ethernet(ethernet + _packet("239.10.1.3"))
    assert framed is not None and framed.payload_at == 34 and udp_destination_port(framed) == 30003
    assert ipv4_in_ethernet(b"\x00" * 12 + b"\x86\xdd" + _packet("239.10.1.3")) is None  # IPv6 ethertype


def test_the_parser_refuses_short_and_non_ipv4_packets() -> None:
    whole = _packet("239.10.1.3")
    assert ipv4_packet(whole[:19]) is None
    assert ipv4_packet(b"\x60" + whole[1:]) is None  # version 6
    assert ipv4_packet(b"\x44" + whole[1:]) is None  # a header length under 20 bytes
    truncated = ipv4_packet(whole[:24])
    assert truncated is not None and udp_destination_port(truncated) is None


def test_the_lab_sniffer_reads_frames_through_the_shared_parser() -> None:
    ethernet = b"\x01\x00\x5e\x01\x01\x01" + b"\x02" * 6 + b"\x08\x00"
    group = socket.inet_aton("239.1.1.1")
    assert is_group_datagram(ethernet + _packet("239.1.1.1", port=5001), group, 5001)
    assert not is_group_datagram(ethernet + _packet("239.1.1.1", port=5002), group, 5001)
    assert not is_group_datagram(ethernet + _packet("239.1.1.2", port=5001), group, 5001)
    assert not is_group_datagram(ethernet + _packet("239.1.1.1", port=5001, protocol=6), group, 5001)
    assert not is_group_datagram(b"\x00" * 20, group, 5001)
    report = ethernet + _packet("224.0.0.22", igmp=0x22, ttl=1)
    assert igmp_message(report) == {"type": "v3-report", "destination": "224.0.0.22"}
    assert igmp_message(ethernet + _packet("239.1.1.1")) is None


def test_a_capture_counts_flows_per_direction_and_igmp_per_type() -> None:
    traffic = Traffic()
    for _ in range(3):
        traffic.observe(_packet(G1.group, ttl=6), outgoing=False)
    traffic.observe(_packet(G2.group, ttl=1, port=G2.port), outgoing=True)
    traffic.observe(_packet("224.0.0.251", port=5353, ttl=255), outgoing=False)  # mDNS: link-local
    traffic.observe(_packet("224.0.0.22", igmp=0x22, ttl=1), outgoing=True)
    traffic.observe(_packet("239.10.1.3", igmp=0x16, ttl=1), outgoing=True)
    traffic.observe(_packet("224.0.0.1", source="0.0.0.0", igmp=0x11, ttl=1), outgoing=False)
    traffic.observe(b"\x60" + bytes(39), outgoing=False)  # not IPv4
    assert {k: (v.datagrams, v.ttls) for k, v in traffic.flows.items()} == {
        (G1.group, G1.port, False): (3, "6"),
        (G2.group, G2.port, True): (1, "1"),
    }
    assert dict(traffic.igmp) == {("v3-report", True): 1, ("v2-report", True): 1, ("query", False): 1}
    assert traffic.query_sources == {"0.0.0.0"}
    findings = traffic_findings(traffic, "eth1", [G1, G2], 10)
    v3, seen = [f for f in findings if f.subject == "IGMP on eth1"]
    assert v3.severity is Severity.PROBLEM and "1 IGMPv3 report(s) left eth1 in 10 s" in v3.message
    assert seen.severity is Severity.OK
    assert seen.message == "in 10 s, in: 1 query; out: 1 v2-report, 1 v3-report (queries from 0.0.0.0)"
    ttl = _one(findings, "capture", f"{G2} leaving eth1")
    assert ttl.severity is Severity.PROBLEM and "TTL 1" in ttl.message and "--ttl 8" in ttl.fix
    arrived = _one(findings, "capture", f"{G1} arriving on eth1")
    assert arrived.severity is Severity.OK and arrived.message.startswith("3 datagram(s) in 10 s, TTL 6")


class FakePacketSocket:
    """What a packet socket hands over: (data, (interface, protocol, packet type, ...)), then silence."""

    def __init__(self, received: list[tuple[bytes, int, int]]) -> None:
        self.received = received

    def __enter__(self) -> FakePacketSocket:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.received = []

    def settimeout(self, _seconds: float) -> None:
        pass

    def recvfrom(self, _size: int) -> tuple[bytes, tuple[str, int, int, int, bytes]]:
        if not self.received:
            raise TimeoutError
        data, protocol, kind = self.received.pop(0)
        return data, ("eth1", protocol, kind, 1, b"\x02" * 6)


def test_the_capture_keeps_ipv4_and_tells_outgoing_from_incoming() -> None:
    arp = b"\x00\x01\x08\x00" + bytes(24)
    fake = FakePacketSocket(
        [
            (_packet(G1.group), 0x0800, socket.PACKET_MULTICAST),
            (_packet(G2.group, port=G2.port, ttl=1), 0x0800, socket.PACKET_OUTGOING),
            (_packet(G1.group), 0x0806, socket.PACKET_MULTICAST),  # an ARP frame's protocol: not counted
            (arp, 0x0806, socket.PACKET_BROADCAST),
        ]
    )
    traffic = Traffic()
    capture_traffic("eth1", 0.05, traffic, lambda interface, seconds: fake)
    assert {k: v.datagrams for k, v in traffic.flows.items()} == {
        (G1.group, G1.port, False): 1,
        (G2.group, G2.port, True): 1,
    }


def test_a_silent_group_is_a_problem_and_another_port_is_named() -> None:
    traffic = Traffic()
    traffic.observe(_packet(G1.group, port=30099), outgoing=False)
    findings = traffic_findings(traffic, "eth1", [G1], 5)
    silent = _one(findings, "capture", f"{G1} arriving")
    assert silent.severity is Severity.PROBLEM
    assert silent.message == (
        "nothing arrived in 5 s; datagrams to 239.10.1.3 did arrive on port(s) 30099: check the port"
    )


# Every local check together, through diagnose()


def _healthy(tree: Tree) -> None:
    tree.conf("all", force_igmp_version="2")
    tree.conf("default", force_igmp_version="2")
    tree.write("proc/net/igmp", _igmp({"eth1": ("V2", [G1.group])}))
    tree.write("proc/net/route", TWO_ENIS + "\n" + _route("eth1", "224.0.0.0/4"))


def test_a_healthy_host_has_no_problem(tree: Tree) -> None:
    _healthy(tree)
    findings = diagnose(DoctorOptions(interface="eth1", groups=(G1,)), host=tree.host())
    assert [f for f in findings if f.severity is not Severity.OK] == []
    assert {f.check for f in findings} == {
        "igmp-version",
        "igmp-membership",
        "route",
        "rp-filter",
        "udp-offload",
    }


def test_the_interface_defaults_to_the_route_of_the_first_group(tree: Tree) -> None:
    _healthy(tree)
    findings = diagnose(DoctorOptions(groups=(G1,)), host=tree.host())
    assert findings[0] == Finding(
        Severity.OK,
        "interface",
        "eth1",
        "checked because the kernel routes 239.10.1.3 by it (224.0.0.0/4 dev eth1); pass --interface to "
        "check another",
    )


def test_an_interface_not_in_the_tree_is_bad_input_naming_the_interfaces(tree: Tree) -> None:
    with pytest.raises(
        BadInput, match=r"--interface eth7: no such interface .*\(interfaces: eth0, eth1, lo\)"
    ):
        diagnose(DoctorOptions(interface="eth7"), host=tree.host())


def test_missing_proc_files_are_warnings_not_failures(tree: Tree) -> None:
    (tree.root / "proc/net/igmp").unlink()
    (tree.root / "proc/net/route").unlink()
    findings = diagnose(DoctorOptions(interface="eth1"), host=tree.host())
    warned = {f.subject for f in findings if f.severity is Severity.WARN}
    assert {"/proc/net/igmp", "/proc/net/route"} <= warned


def test_listen_feeds_the_capture_into_the_findings(tree: Tree) -> None:
    _healthy(tree)
    seen: list[tuple[str, float]] = []

    def capture(interface: str, seconds: float, traffic: Traffic) -> None:
        seen.append((interface, seconds))
        traffic.observe(_packet(G1.group), outgoing=False)

    findings = diagnose(
        DoctorOptions(interface="eth1", groups=(G1,), listen=2.5), host=tree.host(capture=capture)
    )
    assert seen == [("eth1", 2.5)]
    assert _one(findings, "capture", "arriving").message.startswith("1 datagram(s) in 2.5 s, TTL 8")


# Check 7: network namespaces


def _child(findings: list[Finding], error: str | None = None) -> str:
    return Diagnosis.of(findings, error).to_json()


def test_namespaces_run_the_same_checks_and_prefix_the_subjects(tree: Tree) -> None:
    tree.write("run/netns/pod-a", "")
    tree.write("run/netns/pod-b", "")
    calls: list[list[str]] = []
    inner = Finding(
        Severity.PROBLEM, "igmp-version", "eth0 IGMP version", "IGMPv3 is in effect", "sysctl ..."
    )

    def run(argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
        calls.append(list(argv))
        if argv[3] == "pod-a":
            return subprocess.CompletedProcess(argv, 1, _child([inner]), "")
        return subprocess.CompletedProcess(argv, 2, _child([], "--interface eth1: no such interface"), "")

    options = DoctorOptions(interface="eth1", groups=(G1,), listen=1.0, all_namespaces=True)
    findings = diagnose(options, host=tree.host(privileged=lambda: True, run=run))
    assert calls[0] == doctor_in("pod-a", ["--interface", "eth1", "--group", str(G1), "--listen", "1"])
    assert calls[0][:4] == ["ip", "netns", "exec", "pod-a"] and calls[0][-1] == "--json"
    assert findings[0].subject == "netns pod-a: eth0 IGMP version" and findings[0].fix == "sysctl ..."
    assert findings[1].subject == "netns pod-b" and findings[1].severity is Severity.PROBLEM
    assert "the checks stopped early: --interface eth1: no such interface" in findings[1].message


def test_a_namespace_that_prints_no_report_is_a_problem_with_its_last_error_line(tree: Tree) -> None:
    tree.write("run/netns/pod-a", "")

    def run(argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 1, "", 'Cannot open network namespace "pod-a"\n')

    (finding,) = diagnose(
        DoctorOptions(namespaces=("pod-a",)), host=tree.host(privileged=lambda: True, run=run)
    )
    assert finding.message == 'the checks could not run there: Cannot open network namespace "pod-a"'


def test_namespaces_need_root_and_must_exist(tree: Tree) -> None:
    tree.write("run/netns/pod-a", "")
    with pytest.raises(EnvironmentFailure, match="--netns pod-a: entering a network namespace needs root"):
        diagnose(DoctorOptions(namespaces=("pod-a",)), host=tree.host(privileged=lambda: False))
    with pytest.raises(BadInput, match=r"--netns pod-z: no such network namespace \(ip netns list: pod-a\)"):
        diagnose(DoctorOptions(namespaces=("pod-z",)), host=tree.host(privileged=lambda: True))


def test_the_arguments_for_a_namespace_parse_back_to_the_same_options() -> None:
    options = DoctorOptions.parse(
        interface="eth1",
        groups=["239.10.1.3:30003", "239.10.1.4:30004"],
        sources=["10.20.0.0/24"],
        listen="2.5",
        aws=True,
        region="eu-west-2",
        domain="tgw-mcast-domain-0123456789abcdef0",
        namespaces=["pod-a"],
    )
    argv = options.arguments()
    assert "--netns" not in argv
    args = build_parser().parse_args(["doctor", *argv])
    again = DoctorOptions.parse(
        interface=args.interface,
        groups=args.group,
        sources=args.source,
        listen=args.listen,
        aws=args.aws,
        region=args.region,
        eni=args.eni,
        domain=args.domain,
    )
    assert again == replace(options, namespaces=())


# The report


def test_a_diagnosis_reads_back_what_it_wrote_and_refuses_other_documents() -> None:
    findings = [
        Finding(Severity.PROBLEM, "route", "route for 239.10.1.3", "routed by eth0", "ip route add ..."),
        Finding(Severity.OK, "rp-filter", "eth1 rp_filter", "off"),
    ]
    text = Diagnosis.of(findings, "stopped").to_json()
    assert json.loads(text)["problems"] == 1
    assert Diagnosis.from_json(text) == Diagnosis.of(findings, "stopped")
    for bad in (
        "nope",
        "{}",
        '{"findings": [{"severity": "bad"}], "problems": 0}',
        '{"findings": [], "problems": 3}',
    ):
        with pytest.raises(DiagnosisError):
            Diagnosis.from_json(bad)


def test_a_finding_line_names_the_severity_the_subject_and_the_fix() -> None:
    problem = Finding(Severity.PROBLEM, "route", "route for 239.10.1.3", "routed by eth0", "ip route add x")
    assert problem.line() == "PROBLEM  route for 239.10.1.3: routed by eth0; fix: ip route add x"
    assert Finding(Severity.OK, "route", "s", "m").line() == "ok       s: m"
    assert Finding(Severity.WARN, "route", "s", "m").line() == "WARN     s: m"
