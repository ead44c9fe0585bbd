"""Bring an overlay up on this host, or down: a VXLAN device with head-end replication.

``up`` makes the host's part of the overlay match the config, whatever is there already, and
says what it changed:

- the device ``mck-<name>`` (VXLAN ``vni``, UDP ``port``, from this host's underlay address;
  no learning, no multicast underlay). An existing device with another VNI, port or local
  address is made again;
- one all-zeros forwarding entry per other host, ``dst`` its underlay address: each broadcast,
  unknown or multicast frame leaves once per peer, by unicast UDP (head-end replication), which
  is what a VPC carries; entries for hosts no longer in the config are removed;
- the host's overlay address; an MTU of the underlay's less the 50 bytes VXLAN adds;
- IGMPv2 forced on the device (as on every mcastkit host); a route for each group by the device;
- a filter (iptables chain ``MCK-<name>``): multicast leaves by the device only to the overlay's
  groups (and IGMP); datagrams to any other group are dropped and counted (``status`` shows them).

``down`` removes the device (its routes and entries go with it) and the filter; twice is fine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address

from mcastkit.config import Overlay, OverlayHost
from mcastkit.errors import BadInput, EnvironmentFailure
from mcastkit.overlay.system import System

#: Bytes VXLAN adds over IPv4: outer IP 20, UDP 8, VXLAN 8, inner Ethernet 14.
VXLAN_OVERHEAD = 50
ZERO_MAC = "00:00:00:00:00:00"
#: IGMP (protocol 2) always leaves: joins and leaves are how peers learn nothing, but the doctor
#: and any snooping switch on the overlay see them.
IGMP = "2"


def chain(overlay: Overlay) -> str:
    return f"MCK-{overlay.name.upper()}"


@dataclass
class Changes:
    """What ``up`` or ``down`` did, one line per change (nothing: it was already so)."""

    lines: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        self.lines.append(line)


def this_host(overlay: Overlay, system: System, name: str | None) -> OverlayHost:
    """The host named ``name``, or the one whose underlay address this machine has."""
    if name is not None:
        try:
            return overlay.host(name)
        except KeyError:
            known = ", ".join(h.name for h in overlay.hosts)
            raise BadInput(f"--host {name}: not a host of overlay {overlay.name} ({known})") from None
    local = {IPv4Address(a["local"]) for link in system.json("ip", "-j", "-4", "address", "show")
             for a in link.get("addr_info", [])}  # fmt: skip
    mine = [h for h in overlay.hosts if h.underlay in local]
    if len(mine) != 1:
        underlays = ", ".join(f"{h.name} {h.underlay}" for h in overlay.hosts)
        found = "none" if not mine else "more than one"
        raise BadInput(
            f"overlay {overlay.name}: this machine has {found} of its hosts' underlay addresses "
            f"({underlays}); pass --host NAME"
        )
    return mine[0]


def underlay_mtu(overlay: Overlay, me: OverlayHost, system: System) -> int:
    """The smallest MTU of the interfaces the routes to the peers leave by."""
    mtus = []
    for peer in overlay.hosts:
        if peer is me:
            continue
        routes = system.json("ip", "-j", "route", "get", str(peer.underlay), "from", str(me.underlay))
        device = routes[0]["dev"] if routes else None
        links = system.json("ip", "-j", "link", "show", "dev", device) if device else []
        if not links:
            raise BadInput(
                f"overlay {overlay.name}: no route from {me.underlay} to host {peer.name} at "
                f"{peer.underlay}; fix the underlay's routes (the peers must reach each other by unicast UDP)"
            )
        mtus.append(int(links[0]["mtu"]))
    return min(mtus)


def _device(overlay: Overlay, system: System) -> dict[str, object] | None:
    links = system.json("ip", "-j", "-d", "link", "show") or []
    for link in links:
        if link.get("ifname") == overlay.device:
            return dict(link)
    return None


def _vxlan_settings(link: dict[str, object]) -> tuple[object, object, object]:
    info = link.get("linkinfo") or {}
    data = info.get("info_data", {}) if isinstance(info, dict) else {}
    return data.get("id"), data.get("local"), data.get("port")


def up(overlay: Overlay, me: OverlayHost, system: System) -> Changes:
    system.require("ip", "bridge", "iptables")
    changes = Changes()
    device = overlay.device
    mtu = underlay_mtu(overlay, me, system) - VXLAN_OVERHEAD
    existing = _device(overlay, system)
    wanted = (overlay.vni, str(me.underlay), overlay.port)
    if existing is not None and _vxlan_settings(existing) != wanted:
        system.run("ip", "link", "delete", device)
        changes.add(f"{device}: made again (it had VNI, local address or port {_vxlan_settings(existing)})")
        existing = None
    if existing is None:
        vxlan = ["id", str(overlay.vni), "local", str(me.underlay), "dstport", str(overlay.port)]
        system.run("ip", "link", "add", device, "type", "vxlan", *vxlan, "nolearning", "ttl", "64")
        changes.add(f"{device}: VXLAN {overlay.vni} from {me.underlay} on UDP {overlay.port}")
    if existing is None or existing.get("mtu") != mtu:
        system.run("ip", "link", "set", device, "mtu", str(mtu))
        changes.add(f"{device}: MTU {mtu}")
    system.run("ip", "link", "set", device, "multicast", "on", "up")
    address = f"{me.address}/{overlay.cidr.prefixlen}"
    links = system.json("ip", "-j", "-4", "address", "show", "dev", device)
    present = {f"{a['local']}/{a['prefixlen']}" for link in links for a in link.get("addr_info", [])}
    if address not in present:
        system.run("ip", "address", "replace", address, "dev", device)
        changes.add(f"{device}: address {address}")
    _peers(overlay, me, system, changes)
    key = f"net.ipv4.conf.{device}.force_igmp_version"
    if system.sysctl(key) != "2":
        system.set_sysctl(key, "2")
        changes.add(f"{device}: IGMPv2 forced")
    routes = {r.get("dst") for r in system.json("ip", "-j", "route", "show", "dev", device)}
    for group in sorted({g.group for g in overlay.groups}):
        if group not in routes and f"{group}/32" not in routes:
            system.run("ip", "route", "replace", f"{group}/32", "dev", device)
            changes.add(f"{device}: route {group}")
    _filter(overlay, system, changes)
    return changes


def _peers(overlay: Overlay, me: OverlayHost, system: System, changes: Changes) -> None:
    device = overlay.device
    entries = system.json("bridge", "-j", "fdb", "show", "dev", device)
    present = {e["dst"] for e in entries if e.get("mac") == ZERO_MAC and "dst" in e}
    wanted = {str(h.underlay): h.name for h in overlay.hosts if h is not me}
    for address, name in wanted.items():
        if address not in present:
            system.run("bridge", "fdb", "append", ZERO_MAC, "dev", device, "dst", address)
            changes.add(f"{device}: peer {name} at {address}")
    for address in sorted(present - set(wanted)):
        system.run("bridge", "fdb", "del", ZERO_MAC, "dev", device, "dst", address)
        changes.add(f"{device}: peer at {address} removed (not in the overlay any more)")


def filter_rules(overlay: Overlay) -> list[list[str]]:
    """The rules of the overlay's chain, in order: IGMP and its groups pass, other multicast stops."""
    rules = [["-p", IGMP, "-j", "RETURN"]]
    rules += [
        ["-p", "udp", "-d", f"{g.group}/32", "--dport", str(g.port), "-j", "RETURN"] for g in overlay.groups
    ]
    rules.append(["-d", "224.0.0.0/4", "-j", "DROP"])
    return rules


def _filter(overlay: Overlay, system: System, changes: Changes) -> None:
    name = chain(overlay)
    jump = ["OUTPUT", "-o", overlay.device, "-j", name]
    current = system.run("iptables", "-S", name, check=False)
    rules = filter_rules(overlay)
    listed = [line for line in current.splitlines() if line.startswith("-A ")]
    # iptables prints rules its own way (-p igmp, -m udp): ask it whether each one is there.
    if len(listed) != len(rules) or not all(_check(system, [name, *rule]) for rule in rules):
        if current:
            system.run("iptables", "-F", name)
        else:
            system.run("iptables", "-N", name)
        for rule in rules:
            system.run("iptables", "-A", name, *rule)
        groups = len(overlay.groups)
        changes.add(f"{device_filter(overlay)}: only its {groups} group(s) leave by {overlay.device}")
    if not _check(system, jump):
        system.run("iptables", "-A", *jump)


def _check(system: System, rule: list[str]) -> bool:
    """Whether ``rule`` is in place (``iptables -C`` exits 1 when it is not)."""
    try:
        system.run("iptables", "-C", *rule)
    except EnvironmentFailure:
        return False
    return True


def device_filter(overlay: Overlay) -> str:
    return f"filter {chain(overlay)}"


def down(overlay: Overlay, system: System) -> Changes:
    system.require("ip", "iptables")
    changes = Changes()
    if _device(overlay, system) is not None:
        system.run("ip", "link", "delete", overlay.device)
        changes.add(f"{overlay.device}: removed, with its peers and routes")
    name = chain(overlay)
    jump = ["OUTPUT", "-o", overlay.device, "-j", name]
    while _check(system, jump):
        system.run("iptables", "-D", *jump)
    if system.run("iptables", "-S", name, check=False):
        system.run("iptables", "-F", name)
        system.run("iptables", "-X", name)
        changes.add(f"{device_filter(overlay)}: removed")
    return changes
