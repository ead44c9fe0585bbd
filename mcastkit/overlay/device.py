"""Bring an overlay up on this host, or down: a VXLAN device with head-end replication.

``up`` makes the host's part of the overlay match the config, whatever is there already, and
says what it changed (nothing, the second time):

- first the filter (:mod:`.firewall`), so the device never carries anything unfiltered;
- with ``wireguard``, the WireGuard device first (:mod:`.wireguard`); without, a WireGuard
  device left from an earlier config is removed;
- the device ``mck-<name>`` (VXLAN ``vni``, UDP ``port``, from this host's underlay address, or
  its tunnel address with WireGuard; no learning, no multicast underlay). An existing device
  with another VNI, port or local address is made again;
- static forwarding entries, nothing learned and nothing flooded: each peer's MAC (made from its
  overlay address, see :func:`host_mac`; the device takes its own the same way) and broadcast
  (ARP) to each peer; each group's MAC to the peers that receive it (``receives``), so a
  multicast frame leaves once per receiving peer, by unicast UDP (head-end replication), which is
  what a VPC carries. A frame to any other MAC (a group no peer receives) is dropped by the
  device. Entries the config no longer wants are removed;
- the overlay's MTU (the same on every host: ``overlay.mtu``, checked against the underlay's
  route to each peer less the 50 bytes VXLAN adds and the 60 WireGuard adds), the host's overlay
  address (others removed);
- IGMPv2 forced and IPv6 off on the device; a route for each group by the device (a group that
  another interface already routes is left alone, and said so), routes of groups no longer in
  the config removed.

``down`` removes the devices (their routes and entries go with them) and the filter; twice is fine.
"""

from __future__ import annotations

from ipaddress import IPv4Address, ip_network
from pathlib import Path
from typing import Any

from mcastkit.config import Overlay, OverlayHost
from mcastkit.errors import BadInput
from mcastkit.overlay import firewall, wireguard
from mcastkit.overlay.links import VXLAN_OVERHEAD, Changes, link, set_address, set_mtu
from mcastkit.overlay.system import System

BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"


def host_mac(address: IPv4Address) -> str:
    """A host's MAC on the overlay, from its overlay address (locally administered, unicast): its
    peers know it from the config, so nothing has to be learned or flooded."""
    return "02:00:" + ":".join(f"{byte:02x}" for byte in address.packed)


def group_mac(group: IPv4Address) -> str:
    """The Ethernet address of IPv4 multicast to ``group``: 01:00:5e and its low 23 bits (RFC 1112)."""
    low = int(group) & 0x7F_FFFF
    return f"01:00:5e:{low >> 16:02x}:{(low >> 8) & 0xFF:02x}:{low & 0xFF:02x}"


def forwarding(overlay: Overlay, me: OverlayHost) -> dict[tuple[str, str], str]:
    """The device's forwarding entries on ``me``: (MAC, peer's tunnel address: its underlay address
    without WireGuard) -> what it is for.

    Groups whose low 23 bits match share a MAC: their entries are the union of their receivers.
    """
    peers = [h for h in overlay.hosts if h is not me]
    wanted: dict[tuple[str, str], str] = {}
    for peer in peers:
        at = str(overlay.vxlan_endpoint(peer))
        wanted[(host_mac(peer.address), at)] = f"peer {peer.name} at {at}"
        wanted[(BROADCAST_MAC, at)] = f"broadcast to {peer.name}"
    for group in overlay.group_addresses():
        for peer in peers:
            if peer.receives_group(group):
                wanted[(group_mac(group), str(overlay.vxlan_endpoint(peer)))] = f"{group} to {peer.name}"
    return wanted


def forwarding_present(overlay: Overlay, system: System) -> set[tuple[str, str]]:
    entries = system.json("bridge", "-j", "fdb", "show", "dev", overlay.device)
    return {(e["mac"], e["dst"]) for e in entries if "mac" in e and "dst" in e}


def _local_addresses(system: System) -> set[IPv4Address]:
    links = system.json("ip", "-j", "-4", "address", "show")
    return {IPv4Address(a["local"]) for link in links for a in link.get("addr_info", [])}


def this_host(overlay: Overlay, system: System, name: str | None) -> OverlayHost:
    """The host named ``name`` (which must have its underlay address here), or the one whose
    underlay address this machine has."""
    local = _local_addresses(system)
    if name is not None:
        try:
            host = overlay.host(name)
        except KeyError:
            known = ", ".join(h.name for h in overlay.hosts)
            raise BadInput(f"--host {name}: not a host of overlay {overlay.name} ({known})") from None
        if host.underlay not in local:
            raise BadInput(
                f"--host {name}: this machine does not have {name}'s underlay address {host.underlay}; "
                "fix the address in the config, or run this on that host"
            )
        return host
    mine = [h for h in overlay.hosts if h.underlay in local]
    if len(mine) != 1:
        underlays = ", ".join(f"{h.name} {h.underlay}" for h in overlay.hosts)
        found = "none" if not mine else "more than one"
        raise BadInput(
            f"overlay {overlay.name}: this machine has {found} of its hosts' underlay addresses "
            f"({underlays}); pass --host NAME"
        )
    return mine[0]


def check_underlay(overlay: Overlay, me: OverlayHost, system: System) -> None:
    """Every peer has a route, and each route carries the overlay's MTU plus VXLAN's 50 bytes (and
    WireGuard's 60 under it)."""
    overhead = VXLAN_OVERHEAD + (wireguard.WIREGUARD_OVERHEAD if overlay.wireguard else 0)
    for peer in overlay.hosts:
        if peer is me:
            continue
        routes = system.json("ip", "-j", "route", "get", str(peer.underlay), "from", str(me.underlay))
        device = routes[0].get("dev") if routes else None
        if device is None:
            raise BadInput(
                f"overlay {overlay.name}: no route from {me.underlay} to host {peer.name} at "
                f"{peer.underlay}; fix the underlay's routes (the peers must reach each other by unicast UDP)"
            )
        if overlay.wireguard is not None:
            # WireGuard sends from the address the route picks (VXLAN is told its own): the peers
            # and the security group admit this host's underlay address only.
            plain = system.json("ip", "-j", "route", "get", str(peer.underlay))
            source = plain[0].get("prefsrc") if plain else None
            if source is not None and source != str(me.underlay):
                raise BadInput(
                    f"overlay {overlay.name}: the route to host {peer.name} at {peer.underlay} leaves from "
                    f"{source}, not from {me.name}'s underlay {me.underlay}, and WireGuard sends from the "
                    f"address the route picks; give that route src {me.underlay}, or make {source} the "
                    "host's underlay in the config"
                )
        mtu = routes[0].get("metrics", [{}])[0].get("mtu") if routes[0].get("metrics") else None
        if mtu is None:
            mtu = int(system.json("ip", "-j", "link", "show", "dev", device)[0]["mtu"])
        if mtu < overlay.mtu + overhead:
            raise BadInput(
                f"overlay {overlay.name}: mtu {overlay.mtu} needs {overlay.mtu + overhead} bytes on "
                f"the way to host {peer.name}, but {device} carries {mtu}; set the overlay's mtu to "
                f"{mtu - overhead} or less"
            )


def vxlan_settings(link: dict[str, Any]) -> tuple[object, object, object]:
    data = (link.get("linkinfo") or {}).get("info_data", {})
    return data.get("id"), data.get("local"), data.get("port")


def up(
    overlay: Overlay, me: OverlayHost, system: System, key_dir: Path = wireguard.DEFAULT_KEY_DIR
) -> Changes:
    system.require("ip", "bridge", "iptables")
    check_underlay(overlay, me, system)
    if overlay.wireguard is not None:  # nothing changes on a host that could not finish
        wireguard.check(overlay, me, system, key_dir)
    changes = Changes()
    for chain in firewall.chains(overlay, me):
        changes.add(*firewall.install(system, chain))
    if overlay.wireguard is not None:
        wireguard.up(overlay, me, system, key_dir, changes)
    elif link(system, overlay.tunnel_device) is not None:  # the config dropped WireGuard
        wireguard.remove(system, overlay.tunnel_device)
        changes.add(f"{overlay.tunnel_device}: removed (the overlay has no wireguard section any more)")
    device = overlay.device
    existing = link(system, device)
    local = str(overlay.vxlan_endpoint(me))
    wanted = (overlay.vni, local, overlay.port)
    if existing is not None and vxlan_settings(existing) != wanted:
        system.run("ip", "link", "delete", device)
        changes.add(f"{device}: made again (it had VNI, local address and port {vxlan_settings(existing)})")
        existing = None
    if existing is None:
        vxlan = ["id", str(overlay.vni), "local", local, "dstport", str(overlay.port)]
        system.run("ip", "link", "add", device, "type", "vxlan", *vxlan, "nolearning", "ttl", "64")
        changes.add(f"{device}: VXLAN {overlay.vni} from {local} on UDP {overlay.port}")
        # No IPv6 on the overlay: nothing but IPv4 multicast and its control should cross it.
        system.set_sysctl(f"net.ipv6.conf.{device}.disable_ipv6", "1", missing_ok=True)
    set_mtu(system, device, existing, overlay.mtu, changes)
    system.run("ip", "link", "set", device, "multicast", "on", "up")
    mac = host_mac(me.address)
    if existing is None or existing.get("address") != mac:
        system.run("ip", "link", "set", device, "address", mac)
        changes.add(f"{device}: MAC {mac} (from {me.address})")
    set_address(system, device, f"{me.address}/{overlay.cidr.prefixlen}", changes)
    _forwarding(overlay, me, system, changes)
    key = f"net.ipv4.conf.{device}.force_igmp_version"
    if system.sysctl(key) != "2":
        system.set_sysctl(key, "2")
        changes.add(f"{device}: IGMPv2 forced")
    _routes(overlay, system, changes)
    return changes


def _forwarding(overlay: Overlay, me: OverlayHost, system: System, changes: Changes) -> None:
    device = overlay.device
    wanted = forwarding(overlay, me)
    present = forwarding_present(overlay, system)
    # Stale entries go first: a peer's MAC is unicast, and the kernel appends no second
    # destination to a unicast entry, so a peer that moved gets its new one only once the old is gone.
    hosts = {str(overlay.vxlan_endpoint(h)) for h in overlay.hosts}
    gone: set[str] = set()
    for mac, address in sorted(present - set(wanted)):
        system.run("bridge", "fdb", "del", mac, "dev", device, "dst", address)
        if address in hosts:
            changes.add(f"{device}: {mac} to {address} removed (the config no longer sends it there)")
        elif address not in gone:
            gone.add(address)
            changes.add(f"{device}: peer at {address} removed (not in the overlay any more)")
    for (mac, address), purpose in wanted.items():
        if (mac, address) not in present:
            system.run("bridge", "fdb", "append", mac, "dev", device, "dst", address)
            changes.add(f"{device}: {purpose}")


def _routes(overlay: Overlay, system: System, changes: Changes) -> None:
    device = overlay.device
    wanted = sorted({g.group for g in overlay.groups})
    mine = {
        str(r.get("dst", "")).removesuffix("/32")
        for r in system.json("ip", "-j", "route", "show", "dev", device)
    }
    for group in sorted(mine - set(wanted)):
        if ip_network(group, strict=False).is_multicast:  # not the connected subnet
            system.run("ip", "route", "delete", f"{group}/32", "dev", device)
            changes.add(f"{device}: route {group} removed (not in the overlay any more)")
    for group in wanted:
        if group in mine:
            continue
        others = [
            r for r in system.json("ip", "-j", "route", "show", f"{group}/32") if r.get("dev") != device
        ]
        if others:
            changes.add(
                f"{device}: route {group} left by {others[0].get('dev')} (already routed there): senders and "
                f"receivers of {group} on the overlay must name {device} or its address"
            )
            continue
        system.run("ip", "route", "add", f"{group}/32", "dev", device)
        changes.add(f"{device}: route {group}")


def down(overlay: Overlay, system: System) -> Changes:
    """Remove the devices (their routes and entries go with them; wireguard-go exits with its
    device) and the filter, whether or not the config still has WireGuard."""
    system.require("ip")
    changes = Changes()
    if link(system, overlay.device) is not None:
        system.run("ip", "link", "delete", overlay.device)
        changes.add(f"{overlay.device}: removed, with its peers and routes")
    if link(system, overlay.tunnel_device) is not None:
        wireguard.remove(system, overlay.tunnel_device)
        changes.add(f"{overlay.tunnel_device}: removed, with its peers")
    if system.has("iptables"):
        for chain in firewall.chains(overlay, None):
            changes.add(*firewall.remove(system, chain))
    return changes
