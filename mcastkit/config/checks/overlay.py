"""Checks of overlays: hosts, addresses and groups each once, every address on the overlay's subnet."""

from __future__ import annotations

from collections.abc import Sequence

from mcastkit.config.checks.common import repeats
from mcastkit.config.models import Config, Overlay, OverlayWireGuard
from mcastkit.config.problems import Path, Problem


def overlays_problems(path: Path, overlays: Sequence[Overlay]) -> list[Problem]:
    """Every problem of ``overlays`` (at ``path``, e.g. ``("overlays",)``)."""
    problems = [
        Problem((*path, i, "name"), f"overlay name {overlays[i].name!r} is used twice", fix="rename one")
        for i, _ in repeats(o.name for o in overlays)
    ]
    problems += [
        Problem(
            (*path, i, "vni"),
            f"VNI {overlays[i].vni} on UDP port {overlays[i].port} is also overlay {overlays[j].name}'s: "
            "a host in both could not tell their frames apart",
            fix="give each overlay a VNI of its own",
        )
        for i, j in repeats((o.vni, o.port) for o in overlays)
    ]
    wireguard = [(i, o.wireguard.port) for i, o in enumerate(overlays) if o.wireguard]
    problems += [
        Problem(
            (*path, wireguard[i][0], "wireguard", "port"),
            f"UDP {wireguard[i][1]} is also overlay {overlays[wireguard[j][0]].name}'s WireGuard port: a "
            "host in both could listen for one only",
            fix="give each overlay's WireGuard a port of its own",
        )
        for i, j in repeats(port for _, port in wireguard)
    ]
    problems += [
        Problem(
            (*path, i, "wireguard", "port"),
            f"UDP {port} is also overlay {other.name}'s VXLAN port: a host in both would take one "
            "overlay's packets for the other's",
            fix="give WireGuard another port",
        )
        for i, port in wireguard
        for other in overlays
        if other is not overlays[i] and other.port == port
    ]
    for index, overlay in enumerate(overlays):
        problems += [p.within((*path, index)) for p in overlay_problems(overlay)]
    return problems


def overlay_problems(overlay: Overlay) -> list[Problem]:
    hosts = overlay.hosts
    problems = [
        Problem(("hosts", i, "name"), f"host name {hosts[i].name!r} is used twice", fix="rename one")
        for i, _ in repeats(h.name for h in hosts)
    ]
    problems += [
        Problem(
            ("hosts", i, "underlay"),
            f"{hosts[i].underlay} is also the underlay address of host {hosts[j].name}",
            fix="each host needs its own address to be reached at",
        )
        for i, j in repeats(h.underlay for h in hosts)
    ]
    problems += [
        Problem(
            ("hosts", i, "address"),
            f"{hosts[i].address} is also the overlay address of host {hosts[j].name}",
            fix=f"give each host its own address in {overlay.cidr}",
        )
        for i, j in repeats(h.address for h in hosts)
    ]
    usable = overlay.cidr.prefixlen >= 31 or None
    for i, host in enumerate(hosts):
        if host.address not in overlay.cidr:
            problems.append(
                Problem(
                    ("hosts", i, "address"), f"{host.address} is outside the overlay's cidr {overlay.cidr}"
                )
            )
        elif not usable and host.address in (overlay.cidr.network_address, overlay.cidr.broadcast_address):
            problems.append(
                Problem(
                    ("hosts", i, "address"),
                    f"{host.address} is the network or broadcast address of {overlay.cidr}",
                    fix="use a host address",
                )
            )
        if host.underlay in overlay.cidr:
            problems.append(
                Problem(
                    ("hosts", i, "underlay"),
                    f"{host.underlay} is inside the overlay's own cidr {overlay.cidr}: the tunnel would "
                    "be routed into itself",
                    fix="use the address the host has on its real network",
                )
            )
    carried = overlay.group_addresses()
    for i, host in enumerate(hosts):
        receives = host.receives or []
        problems += [
            Problem(("hosts", i, "receives", r), f"{receives[r]} is listed twice")
            for r, _ in repeats(receives)
        ]
        problems += [
            Problem(
                ("hosts", i, "receives", r),
                f"{group} is not a group of overlay {overlay.name} "
                f"({', '.join(str(g) for g in carried)}): no frame of it would reach the host",
                fix="add it to the overlay's groups, or name one of them",
            )
            for r, group in enumerate(receives)
            if group not in carried
        ]
    if overlay.wireguard is not None:
        problems += _wireguard_problems(overlay, overlay.wireguard)
    problems += [
        Problem(("groups", i), f"{overlay.groups[i]} is listed twice")
        for i, _ in repeats(str(g) for g in overlay.groups)
    ]
    problems += [
        Problem(
            ("groups", i),
            f"{group}: its port is the overlay's own VXLAN port {overlay.port}",
            fix="give the group or the overlay another port",
        )
        for i, group in enumerate(overlay.groups)
        if group.port == overlay.port
    ]
    problems += [
        Problem(
            ("groups", i),
            f"{group}: its port is the overlay's WireGuard port {overlay.underlay_port}: a host's filter "
            "takes it for WireGuard from a stranger",
            fix="give the group or WireGuard another port",
        )
        for i, group in enumerate(overlay.groups)
        if overlay.wireguard is not None and group.port == overlay.wireguard.port
    ]
    return problems


def _wireguard_problems(overlay: Overlay, wireguard: OverlayWireGuard) -> list[Problem]:
    problems = []
    if wireguard.cidr.prefixlen != overlay.cidr.prefixlen:
        problems.append(
            Problem(
                ("wireguard", "cidr"),
                f"{wireguard.cidr} is a /{wireguard.cidr.prefixlen}, the overlay's cidr {overlay.cidr} a "
                f"/{overlay.cidr.prefixlen}: each host's tunnel address is its overlay address moved into it",
                fix=f"use a /{overlay.cidr.prefixlen}",
            )
        )
    elif wireguard.cidr.overlaps(overlay.cidr):
        problems.append(
            Problem(
                ("wireguard", "cidr"),
                f"{wireguard.cidr} overlaps the overlay's cidr {overlay.cidr}: the tunnel would be routed "
                "into the overlay",
                fix="choose a subnet of its own",
            )
        )
    if wireguard.port == overlay.port:
        problems.append(
            Problem(
                ("wireguard", "port"),
                f"UDP {wireguard.port} is also the overlay's VXLAN port: both listen on the host",
                fix="give WireGuard another port (51820 is usual)",
            )
        )
    problems += [
        Problem(
            ("hosts", i, "underlay"),
            f"{host.underlay} is inside the WireGuard cidr {wireguard.cidr}: the tunnel would be routed "
            "into itself",
            fix="use the address the host has on its real network",
        )
        for i, host in enumerate(overlay.hosts)
        if host.underlay in wireguard.cidr
    ]
    keys = [h.public_key for h in overlay.hosts]
    problems += [
        Problem(
            ("hosts", i, "public_key"),
            f"the public key of host {overlay.hosts[j].name} again: WireGuard could not tell them apart",
            fix="run `mcastkit overlay key` on each host and copy its own key",
        )
        for i, j in repeats(keys)
        if keys[i] is not None
    ]
    return problems


def overlay_config_problems(config: Config) -> list[Problem]:
    """Overlays against the rest of the config: their subnets clash with no network, no group is
    carried by two, and no host sits in a multicast subnet (whose network ACL admits multicast only)."""
    problems: list[Problem] = []
    networks = [(f"regions.{name}.vpc_cidr", region.vpc_cidr) for name, region in config.regions.items()]
    networks += [
        (f"regions.{name}.relay.datacenter_cidrs", cidr)
        for name, region in config.regions.items()
        if region.relay
        for cidr in region.relay.datacenter_cidrs
    ]
    networks += [(f"overlays[{i}].cidr", overlay.cidr) for i, overlay in enumerate(config.overlays)]
    networks += [
        (f"overlays[{i}].wireguard.cidr", overlay.wireguard.cidr)
        for i, overlay in enumerate(config.overlays)
        if overlay.wireguard
    ]
    carried: dict[str, str] = {}
    for index, overlay in enumerate(config.overlays):
        path: Path = ("overlays", index)
        own = {(*path, "cidr"): overlay.cidr}
        if overlay.wireguard:
            own[(*path, "wireguard", "cidr")] = overlay.wireguard.cidr
        for field, cidr in own.items():
            for where, network in networks:
                if not where.startswith(f"overlays[{index}].") and cidr.overlaps(network):
                    problems.append(
                        Problem(
                            field,
                            f"{cidr} overlaps {where} {network}: the overlay's route would take that "
                            "network's traffic on its hosts",
                            fix="choose a subnet no network of the config uses",
                        )
                    )
                    break
        for g, group in enumerate(overlay.groups):
            other = carried.setdefault(str(group), overlay.name)
            if other != overlay.name:
                problems.append(
                    Problem(
                        (*path, "groups", g),
                        f"{group} is also carried by overlay {other}: each host routes a group by one device",
                        fix="carry each group on one overlay",
                    )
                )
        in_a_vpc = any(h.underlay in r.vpc_cidr for h in overlay.hosts for r in config.regions.values())
        if in_a_vpc and len(overlay.hosts) > config.quotas.security_group_rules:
            problems.append(
                Problem(
                    (*path, "hosts"),
                    f"{len(overlay.hosts)} hosts need as many inbound (and outbound) rules in the "
                    "overlay's security group, over quotas.security_group_rules "
                    f"({config.quotas.security_group_rules})",
                    fix="split the hosts into overlays of fewer hosts, or raise the VPC quota and "
                    "quotas.security_group_rules",
                )
            )
        for h, host in enumerate(overlay.hosts):
            for name, region in config.regions.items():
                subnet = next((s for s in region.subnets if host.underlay in s.cidr), None)
                if subnet is not None:
                    problems.append(
                        Problem(
                            (*path, "hosts", h, "underlay"),
                            f"{host.underlay} is in the multicast subnet {subnet.cidr} of {name}, whose "
                            f"network ACL admits multicast and HTTPS only: VXLAN on UDP {overlay.port} "
                            "would be dropped",
                            fix="put the overlay's host in another subnet of the VPC",
                        )
                    )
    return problems
