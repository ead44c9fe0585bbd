"""The lab's namespaces, links and addresses, and how to build and remove them.

::

    datacenter                      Direct Connect      AWS segment (the TGW multicast domain)
    [src] 10.77.1.10 --lan-- 10.77.1.1 [dc] 10.77.0.1 ==/30== 10.77.0.2 [dx] 10.77.2.1 --+
     probe sender              ingress relay                   router                  |
                                                                             [tgw] br0: IGMP snooping
                                                                             + querier, IGMPv2
                                              [egress] 10.77.2.10 egress relay ------+
                                              [rx1] 10.77.2.21, [rx2] ...  members --+
                                              [rx<n+1>] never joins -----------------+

Every name starts with the lab name, so two labs (or a lab and a test) do not collide. The
AWS segment's links have the Transit Gateway's MTU (8,500); the datacenter's, 1,500.
The bridge's querier sends from 0.0.0.0, as the Transit Gateway does.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from mcastkit.doctor.igmp_table import parse_igmp_table
from mcastkit.lab import netns
from mcastkit.lab.netns import LabError
from mcastkit.net.limits import TGW_MTU

BOOTSTRAP_IGMPV2 = Path(__file__).resolve().parent.parent / "bootstrap" / "igmpv2.sh"
_NAME = re.compile(r"^[a-z][a-z0-9]{0,11}$")
ROLES = ("src", "dc", "dx", "tgw", "egress")

SOURCE_ADDRESS = "10.77.1.10"
INGRESS_ADDRESS = "10.77.1.1"
EGRESS_ADDRESS = "10.77.2.10"
VPC_ROUTER = "10.77.2.1"
LINK_DC, LINK_DX = "10.77.0.1", "10.77.0.2"
#: A new Linux bridge floods all multicast for its first 10 s, before it applies snooping
#: (IGMP reports included, which makes IGMPv2 hosts suppress their own): seconds to wait, with margin.
SNOOPING_SETTLE = 11.0


@dataclass(frozen=True)
class Receiver:
    name: str
    namespace: str
    address: str
    member: bool
    #: The receiver's port on the bridge, as `bridge mdb` names it.
    bridge_port: str


def lab_name_problem(name: str) -> str:
    return f"lab name {name!r}: use 1-12 lowercase letters and digits, starting with a letter"


def check_lab_name(name: str) -> str:
    """``argparse`` type for ``--name``: a bad name is bad input (exit 2), not an environment fault."""
    if not _NAME.match(name):
        raise argparse.ArgumentTypeError(lab_name_problem(name))
    return name


@dataclass(frozen=True)
class Layout:
    name: str
    members: int = 2

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise LabError(lab_name_problem(self.name))
        if not 1 <= self.members <= 8:
            raise LabError(f"receivers {self.members}: the lab has room for 1-8 members")

    def ns(self, role: str) -> str:
        return f"{self.name}-{role}"

    @property
    def receivers(self) -> list[Receiver]:
        """``members`` receivers that join, then one that never does (the snooping check)."""
        return [
            Receiver(
                name=f"rx{index}",
                namespace=self.ns(f"rx{index}"),
                address=f"10.77.2.{20 + index}",
                member=index <= self.members,
                bridge_port=f"rx{index}",
            )
            for index in range(1, self.members + 2)
        ]

    @property
    def namespaces(self) -> list[str]:
        return [self.ns(role) for role in ROLES] + [receiver.namespace for receiver in self.receivers]


def owned_namespaces(name: str) -> list[str]:
    """Namespaces of lab ``name`` that exist now, whatever receiver count it was built with."""
    pattern = re.compile(rf"^{re.escape(name)}-(?:{'|'.join(ROLES)}|rx\d+)$")
    return [namespace for namespace in netns.namespaces() if pattern.match(namespace)]


def build(layout: Layout, *, gro: bool = True) -> None:
    """Create every namespace and link; on any failure remove what was made and re-raise.

    ``gro``: whether the receiving hosts' NICs coalesce bursts (see ``_build``).
    """
    try:
        _build(layout, gro)
    except LabError:
        remove(layout.name)
        raise


def remove(name: str) -> list[str]:
    """Delete the lab's namespaces after killing anything still running in them; return them."""
    found = owned_namespaces(name)
    for namespace in found:
        netns.stop(netns.pids_in(namespace), grace=1.0)
    for namespace in found:
        netns.ip("netns", "delete", namespace, check=False)
    return found


def _build(layout: Layout, gro: bool) -> None:
    if owned_namespaces(layout.name):
        raise LabError(
            f"lab {layout.name!r} already exists: run `mcastkit lab down --name {layout.name}` first"
        )
    for namespace in layout.namespaces:
        netns.ip("netns", "add", namespace)
        netns.ip("link", "set", "lo", "up", namespace=namespace)
        # Keep the lab quiet: no IPv6 neighbour discovery or MLD next to the IPv4 under test.
        netns.in_namespace(namespace, ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])
        netns.in_namespace(namespace, ["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"])

    src, dc, dx, tgw, egress = (layout.ns(role) for role in ROLES)
    # Datacenter LAN: the source and the ingress relay host.
    _veth(src, "lan0", f"{SOURCE_ADDRESS}/24", dc, "lan0", f"{INGRESS_ADDRESS}/24")
    # Direct Connect: a routed point-to-point link to the router that stands for the AWS side.
    _veth(dc, "dx0", f"{LINK_DC}/30", dx, "dc0", f"{LINK_DX}/30")
    netns.in_namespace(dx, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
    netns.ip("route", "add", "default", "via", LINK_DX, namespace=dc)
    # Joins that name no interface (INADDR_ANY) should land on the LAN, not on the WAN link.
    netns.ip("route", "add", "224.0.0.0/4", "dev", "lan0", namespace=dc)
    netns.ip("route", "add", "224.0.0.0/4", "dev", "lan0", namespace=src)

    # The AWS segment: a bridge that forwards a group only to ports that joined it.
    netns.ip(
        "link", "add", "br0", "type", "bridge",
        "mcast_snooping", "1", "mcast_querier", "1", "mcast_igmp_version", "2",
        namespace=tgw,
    )  # fmt: skip
    netns.ip("link", "set", "br0", "up", namespace=tgw)
    hosts = [(dx, "vpc0", VPC_ROUTER, "dx"), (egress, "eth0", EGRESS_ADDRESS, "egress")]
    hosts += [(r.namespace, "eth0", r.address, r.bridge_port) for r in layout.receivers]
    for namespace, device, address, port in hosts:
        # The Transit Gateway's MTU (8,500): what its members may send as one datagram.
        netns.ip(
            "link", "add", device, "mtu", str(TGW_MTU), "type", "veth", "peer", "name", port,
            "mtu", str(TGW_MTU), "netns", tgw, namespace=namespace,
        )  # fmt: skip
        netns.ip("address", "add", f"{address}/24", "dev", device, namespace=namespace)
        netns.ip("link", "set", device, "up", namespace=namespace)
        netns.ip("link", "set", port, "master", "br0", "up", namespace=tgw)
        if namespace != dx:
            netns.ip("route", "add", "default", "via", VPC_ROUTER, namespace=namespace)
            netns.ip("route", "add", "224.0.0.0/4", "dev", device, namespace=namespace)

    # Multicast leaves a real host as one frame per datagram: a veth would carry a UDP GSO
    # message (up to 64 datagrams) as one frame to the bridge and the receivers' sockets,
    # which no Transit Gateway does. Make the sending hosts cut it, as a NIC without UDP
    # segmentation offload does.
    for namespace, device in ((src, "lan0"), (egress, "eth0")):
        netns.ip("link", "set", device, "gso_max_segs", "1", namespace=namespace)
    # And a receiving NIC coalesces a burst of one flow before the stack sees it (GRO, on by
    # default; a socket that asked for UDP GRO then takes the run as one message). A veth does
    # that only with GRO on and for frames from a peer without TCP segmentation offload.
    # ``gro=False`` stands for a NIC or driver that does not coalesce: every datagram alone.
    nics = [(dc, "lan0", src, "lan0")] + [(r.namespace, "eth0", tgw, r.bridge_port) for r in layout.receivers]
    for namespace, device, peer_namespace, peer in nics:
        _nic(namespace, device, "gro=on" if gro else "gro=off")
        _nic(peer_namespace, peer, "tso=off")
    # The bridge stands for the TGW, which runs no iptables on what it forwards: keep the
    # host's bridge netfilter (br_netfilter, where it is loaded) out of the path.
    for table in ("iptables", "ip6tables", "arptables"):
        netns.in_namespace(tgw, ["sysctl", "-qw", f"net.bridge.bridge-nf-call-{table}=0"], check=False)
    # Every AWS host is an ECS container instance: it runs the IGMPv2 bootstrap at boot.
    for namespace in [egress] + [r.namespace for r in layout.receivers]:
        run_bootstrap(namespace)


def _nic(namespace: str, device: str, setting: str) -> None:
    netns.in_namespace(namespace, [sys.executable, "-m", "mcastkit.lab.nic", device, setting])


def run_bootstrap(namespace: str) -> str:
    """Run bootstrap/igmpv2.sh in ``namespace`` as an ECS host would, without touching /etc."""
    return netns.in_namespace(
        namespace, ["env", "MCASTKIT_SYSCTL_CONF=", "bash", str(BOOTSTRAP_IGMPV2)]
    ).strip()


def _veth(left_ns: str, left: str, left_address: str, right_ns: str, right: str, right_address: str) -> None:
    netns.ip("link", "add", left, "type", "veth", "peer", "name", right, "netns", right_ns, namespace=left_ns)
    for namespace, device, address in ((left_ns, left, left_address), (right_ns, right, right_address)):
        netns.ip("address", "add", address, "dev", device, namespace=namespace)
        netns.ip("link", "set", device, "up", namespace=namespace)


def igmp_versions(namespace: str, device: str = "eth0") -> set[str]:
    """The IGMP versions ``/proc/net/igmp`` shows for ``device`` in ``namespace`` (e.g. ``{"V2"}``)."""
    return parse_igmp_versions(netns.in_namespace(namespace, ["cat", "/proc/net/igmp"]), device)


def joined_locally(namespace: str, group: str) -> bool:
    """Whether a socket in ``namespace`` holds a membership of ``group`` (/proc/net/igmp lists it)."""
    return bool(parse_igmp_table(netns.in_namespace(namespace, ["cat", "/proc/net/igmp"])).holders(group))


def parse_igmp_versions(proc_net_igmp: str, device: str) -> set[str]:
    found = parse_igmp_table(proc_net_igmp).devices.get(device)
    return {found.querier} if found is not None else set()


def joined_ports(tgw_namespace: str, group: str) -> set[str]:
    """Bridge ports with a snooped membership of ``group``."""
    ports: set[str] = set()
    for table in netns.bridge_json("mdb", "show", namespace=tgw_namespace):
        for entry in table.get("mdb", []):
            if entry.get("grp") == group:
                ports.add(entry.get("port", ""))
    return ports
