"""Checks of overlays: hosts, addresses and groups each once, every address on the overlay's subnet."""

from __future__ import annotations

from collections.abc import Sequence

from mcastkit.config.checks.common import repeats
from mcastkit.config.models import Overlay
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
    problems += [
        Problem(("groups", i), f"{overlay.groups[i]} is listed twice")
        for i, _ in repeats(str(g) for g in overlay.groups)
    ]
    return problems
