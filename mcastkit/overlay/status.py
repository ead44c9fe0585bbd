"""What an overlay looks like on this host: the device, its peers (and whether they answer across
the overlay), its groups, its traffic, and what ``up`` would still have to fix."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from mcastkit.config import Overlay, OverlayHost
from mcastkit.overlay import firewall, wireguard
from mcastkit.overlay.device import (
    BROADCAST_MAC,
    forwarding,
    forwarding_present,
    group_mac,
    host_mac,
    vxlan_settings,
)
from mcastkit.overlay.links import VXLAN_OVERHEAD, link
from mcastkit.overlay.system import System


@dataclass(frozen=True)
class Peer:
    name: str
    underlay: str
    address: str
    #: Frames are replicated to it (forwarding entries for its MAC and broadcast name it).
    replicated: bool
    #: It answered an ICMP echo across the overlay (None: not checked).
    reachable: bool | None
    #: With WireGuard: seconds since the last handshake (None: never), bytes in and out.
    handshake_age: int | None = None
    tunnel_rx_bytes: int | None = None
    tunnel_tx_bytes: int | None = None


@dataclass
class OverlayStatus:
    overlay: str
    host: str
    device: str
    up: bool
    mtu: int | None = None
    peers: list[Peer] = field(default_factory=list)
    groups_routed: list[str] = field(default_factory=list)
    #: Group -> the peers its frames are replicated to (by the forwarding entries in place).
    receivers: dict[str, list[str]] = field(default_factory=dict)
    igmpv2: bool = False
    traffic: dict[str, int] = field(default_factory=dict)
    #: Since ``up``: datagrams the filter stopped, sent to groups outside the overlay; VXLAN
    #: packets from addresses that are not the overlay's hosts.
    outside_groups: int = 0
    strangers: int = 0
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
            line = f"  peer {peer.name} at {peer.underlay} ({peer.address}): {replicated}, {reach}"
            if peer.tunnel_rx_bytes is not None:
                handshake = "never" if peer.handshake_age is None else f"{peer.handshake_age} s ago"
                line += (
                    f"; WireGuard handshake {handshake}, in {peer.tunnel_rx_bytes} B, "
                    f"out {peer.tunnel_tx_bytes} B"
                )
            out.append(line)
        out.append(f"  groups routed by {self.device}: {', '.join(self.groups_routed) or 'none'}")
        for group, names in self.receivers.items():
            out.append(f"  {group} replicated to: {', '.join(names) or 'no peer (it stays on this host)'}")
        out.append(f"  IGMPv2 {'forced' if self.igmpv2 else 'NOT forced'}")
        t = self.traffic
        out.append(
            f"  traffic: in {t.get('rx_packets', 0)} packets ({t.get('rx_bytes', 0)} B), "
            f"out {t.get('tx_packets', 0)} packets ({t.get('tx_bytes', 0)} B); "
            f"{self.outside_groups} datagrams to groups outside the overlay and {self.strangers} VXLAN "
            "packets from strangers dropped since up"
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
    found = [
        entry
        for entry in system.json("ip", "-j", "-s", "-d", "link", "show")
        if entry.get("ifname") == device
    ]
    result = OverlayStatus(overlay.name, me.name, device, up=bool(found))
    if not found:
        result.problems.append(f"{device} does not exist; fix: mcastkit overlay up (on {me.name})")
        return result
    vxlan = found[0]
    fix = "fix: mcastkit overlay up"
    if "UP" not in vxlan.get("flags", []):
        result.up = False
        result.problems.append(f"{device} is down; {fix}")
    if vxlan_settings(vxlan) != (overlay.vni, str(overlay.vxlan_endpoint(me)), overlay.port):
        result.problems.append(f"{device} has VNI, local address and port {vxlan_settings(vxlan)}; {fix}")
    result.mtu = vxlan.get("mtu")
    if result.mtu != overlay.mtu:
        result.problems.append(f"{device} has MTU {result.mtu}, the overlay {overlay.mtu}; {fix}")
    stats = vxlan.get("stats64", {})
    result.traffic = {
        "rx_packets": stats.get("rx", {}).get("packets", 0),
        "rx_bytes": stats.get("rx", {}).get("bytes", 0),
        "tx_packets": stats.get("tx", {}).get("packets", 0),
        "tx_bytes": stats.get("tx", {}).get("bytes", 0),
    }
    addresses = system.json("ip", "-j", "-4", "address", "show", "dev", device)
    if str(me.address) not in {a["local"] for entry in addresses for a in entry.get("addr_info", [])}:
        result.problems.append(f"{device} lacks its address {me.address}; {fix}")
    present = forwarding_present(overlay, system)
    missing = [purpose for entry, purpose in forwarding(overlay, me).items() if entry not in present]
    if missing:
        result.problems.append(f"forwarding entries missing: {', '.join(missing)}; {fix}")
    tunnel = _tunnel(overlay, me, system, result, fix)
    port = overlay.underlay_port
    for host in overlay.hosts:
        if host is me:
            continue
        reachable = echo(str(host.address), device) if (check_peers and echo and result.up) else None
        at = str(overlay.vxlan_endpoint(host))
        is_replicated = {(host_mac(host.address), at), (BROADCAST_MAC, at)} <= present
        peer = Peer(host.name, str(host.underlay), str(host.address), is_replicated, reachable)
        state = tunnel.get(host.public_key or "")
        if state is not None:
            age = int(time.time()) - state.latest_handshake if state.latest_handshake else None
            peer = replace(
                peer, handshake_age=age, tunnel_rx_bytes=state.rx_bytes, tunnel_tx_bytes=state.tx_bytes
            )
        result.peers.append(peer)
        if is_replicated and reachable is False:
            keys = " or a WireGuard key in a config is not the host's own," if overlay.wireguard else ""
            result.problems.append(
                f"peer {host.name} at {host.underlay} does not answer across the overlay: its overlay is "
                f"down, or its config does not list {me.name} at {me.underlay},{keys} or UDP {port} (or "
                "ICMP inside it) is blocked between the hosts (security group, network ACL, firewall); "
                f"fix: mcastkit overlay status on {host.name}, and allow UDP {port} between the peers"
            )
    result.receivers = {
        str(group): [
            h.name
            for h in overlay.hosts
            if h is not me and (group_mac(group), str(overlay.vxlan_endpoint(h))) in present
        ]
        for group in overlay.group_addresses()
    }
    routes = system.json("ip", "-j", "route", "show", "dev", device)
    routed = {str(r.get("dst", "")).removesuffix("/32") for r in routes}
    wanted = sorted({g.group for g in overlay.groups})
    result.groups_routed = [g for g in wanted if g in routed]
    result.igmpv2 = system.sysctl(f"net.ipv4.conf.{device}.force_igmp_version") == "2"
    if not result.igmpv2:
        result.problems.append(f"IGMPv2 not forced on {device}; {fix}")
    out, inbound = firewall.chains(overlay, me)
    for chain in (out, inbound):
        if firewall.dropped(system, chain) is None or not firewall.jumped_first(system, chain):
            result.problems.append(f"filter {chain.name} is missing or not first in {chain.builtin}; {fix}")
    result.outside_groups = firewall.dropped(system, out) or 0
    result.strangers = firewall.dropped(system, inbound) or 0
    if result.outside_groups:
        carried = ", ".join(str(g) for g in overlay.groups)
        result.problems.append(
            f"{result.outside_groups} datagrams to groups outside the overlay were dropped since up (it "
            f"carries {carried}): a sender uses a group the overlay does not carry; fix: add the group to "
            "the overlay's groups, or send to one of them"
        )
    if result.strangers:
        result.problems.append(
            f"{result.strangers} packets on UDP {overlay.underlay_port} or {overlay.port} from addresses "
            "that are not the overlay's hosts (or VXLAN that did not come through WireGuard) were dropped "
            "since up: a host missing from this host's config, or a stranger"
        )
    return result


def _tunnel(
    overlay: Overlay, me: OverlayHost, system: System, result: OverlayStatus, fix: str
) -> dict[str, wireguard.PeerState]:
    """The WireGuard device's peers by public key (none without WireGuard), and its problems."""
    if overlay.wireguard is None:
        return {}
    device = overlay.tunnel_device
    if not system.has("wg"):
        result.problems.append("`wg` not found: install wireguard-tools")
        return {}
    found = link(system, device)
    if found is None:
        result.problems.append(f"{device} (WireGuard) does not exist; {fix}")
        return {}
    mtu = overlay.mtu + VXLAN_OVERHEAD
    if "UP" not in found.get("flags", []) or found.get("mtu") != mtu:
        result.problems.append(f"{device} is down or its MTU is not {mtu}; {fix}")
    _, port, present = wireguard.read_state(system, device)
    if port != str(overlay.wireguard.port):
        result.problems.append(
            f"{device} listens on UDP {port}, the config says {overlay.wireguard.port}; {fix}"
        )
    for name in wireguard.missing_keys(overlay, me):
        result.problems.append(
            f"host {name} has no public_key in the config; fix: mcastkit overlay key on {name}"
        )
    for key, peer in wireguard.wanted_peers(overlay, me).items():
        if not peer.matches(present.get(key)):
            result.problems.append(f"{device}: peer {peer.host.name} is not set as the config has it; {fix}")
    return present
