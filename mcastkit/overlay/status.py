"""What an overlay looks like on this host: the device, its peers (and whether they answer across
the overlay), its groups, its traffic, and what ``up`` would still have to fix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from mcastkit.config import Overlay, OverlayHost
from mcastkit.overlay.device import ZERO_MAC, chain
from mcastkit.overlay.system import System


@dataclass(frozen=True)
class Peer:
    name: str
    underlay: str
    address: str
    #: Frames are replicated to it (an all-zeros forwarding entry names it).
    replicated: bool
    #: It answered an ICMP echo across the overlay (None: not checked).
    reachable: bool | None


@dataclass
class OverlayStatus:
    overlay: str
    host: str
    device: str
    up: bool
    mtu: int | None = None
    peers: list[Peer] = field(default_factory=list)
    groups_routed: list[str] = field(default_factory=list)
    igmpv2: bool = False
    traffic: dict[str, int] = field(default_factory=dict)
    #: Datagrams the filter stopped: sent to groups outside the overlay.
    outside_groups: int = 0
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        if not self.up:
            return [
                f"overlay {self.overlay} on {self.host}: down ({self.device} does not exist)",
                *self.problems,
            ]
        out = [f"overlay {self.overlay} on {self.host}: {self.device} up, MTU {self.mtu}"]
        for peer in self.peers:
            reach = {True: "answers", False: "does not answer", None: "not checked"}[peer.reachable]
            replicated = "replicated to" if peer.replicated else "NOT replicated to"
            out.append(f"  peer {peer.name} at {peer.underlay} ({peer.address}): {replicated}, {reach}")
        out.append(f"  groups routed by {self.device}: {', '.join(self.groups_routed) or 'none'}")
        out.append(f"  IGMPv2 {'forced' if self.igmpv2 else 'NOT forced'}")
        t = self.traffic
        out.append(
            f"  traffic: in {t.get('rx_packets', 0)} packets ({t.get('rx_bytes', 0)} B), "
            f"out {t.get('tx_packets', 0)} packets ({t.get('tx_bytes', 0)} B); "
            f"{self.outside_groups} datagrams to groups outside the overlay dropped"
        )
        return out + self.problems


def status(
    overlay: Overlay,
    me: OverlayHost,
    system: System,
    *,
    check_peers: bool = True,
    echo: Callable[[str, str], bool] | None = None,
) -> OverlayStatus:
    device = overlay.device
    found = [link for link in system.json("ip", "-j", "-s", "link", "show") if link.get("ifname") == device]
    result = OverlayStatus(overlay.name, me.name, device, up=bool(found))
    if not found:
        result.problems.append(f"fix: mcastkit overlay up (on {me.name})")
        return result
    link = found[0]
    result.mtu = link.get("mtu")
    stats = link.get("stats64", {})
    result.traffic = {
        "rx_packets": stats.get("rx", {}).get("packets", 0),
        "rx_bytes": stats.get("rx", {}).get("bytes", 0),
        "tx_packets": stats.get("tx", {}).get("packets", 0),
        "tx_bytes": stats.get("tx", {}).get("bytes", 0),
    }
    entries = system.json("bridge", "-j", "fdb", "show", "dev", device)
    replicated = {e["dst"] for e in entries if e.get("mac") == ZERO_MAC and "dst" in e}
    for host in overlay.hosts:
        if host is me:
            continue
        reachable = echo(str(host.address), device) if (check_peers and echo) else None
        result.peers.append(
            Peer(
                host.name, str(host.underlay), str(host.address), str(host.underlay) in replicated, reachable
            )
        )
        if str(host.underlay) not in replicated:
            result.problems.append(f"peer {host.name}: no forwarding entry; fix: mcastkit overlay up")
        elif reachable is False:
            result.problems.append(
                f"peer {host.name} at {host.underlay} does not answer across the overlay: its overlay is "
                f"down, or UDP {overlay.port} is blocked between the hosts (security group, network ACL, "
                "firewall); "
                f"fix: mcastkit overlay up on {host.name}, and allow UDP {overlay.port} between the peers"
            )
    routes = {
        str(r.get("dst", "")).removesuffix("/32")
        for r in system.json("ip", "-j", "route", "show", "dev", device)
    }
    wanted = sorted({g.group for g in overlay.groups})
    result.groups_routed = [g for g in wanted if g in routes]
    missing = [g for g in wanted if g not in routes]
    if missing:
        result.problems.append(f"no route by {device} for {', '.join(missing)}; fix: mcastkit overlay up")
    result.igmpv2 = system.sysctl(f"net.ipv4.conf.{device}.force_igmp_version") == "2"
    if not result.igmpv2:
        result.problems.append(f"IGMPv2 not forced on {device}; fix: mcastkit overlay up")
    result.outside_groups = _dropped(system, chain(overlay))
    if result.outside_groups:
        carried = ", ".join(str(g) for g in overlay.groups)
        result.problems.append(
            f"{result.outside_groups} datagrams to groups outside the overlay were dropped (it carries "
            f"{carried}): a sender uses a group the overlay does not carry; fix: add the group to the "
            "overlay's groups, or send to one of them"
        )
    return result


def _dropped(system: System, name: str) -> int:
    """Packets the chain's DROP rule counted (0 when the chain is not there)."""
    listing = system.run("iptables", "-L", name, "-v", "-x", "-n", check=False)
    for line in listing.splitlines():
        columns = line.split()
        if len(columns) > 2 and columns[2] == "DROP" and columns[0].isdigit():
            return int(columns[0])
    return 0
