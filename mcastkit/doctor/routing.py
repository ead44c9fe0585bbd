"""Check 3: which interface the kernel picks for each group when an application does not say.

A sender that sets no ``IP_MULTICAST_IF`` sends out of the interface of the route for the group,
and a receiver whose join names no interface (``imr_interface`` 0.0.0.0) joins there. On a host
with a second ENI for multicast, that route is usually the default route's primary ENI.
"""

from __future__ import annotations

from collections.abc import Sequence

from mcastkit.doctor.findings import Finding, Severity
from mcastkit.doctor.route_table import RouteTable
from mcastkit.errors import BadInput
from mcastkit.net.addresses import GroupPort

CHECK = "route"
#: What a lookup for "multicast in general" asks: the route that covers 224.0.0.0/4 (or the default).
_ANY_GROUP = "224.0.0.0"


def default_interface(routes: RouteTable, groups: Sequence[GroupPort]) -> tuple[str, str]:
    """The interface to check when none is given, and why it was chosen."""
    address = groups[0].group if groups else _ANY_GROUP
    shown = address if groups else "multicast"
    route = routes.route_for(address)
    if route is None or route.reject:
        raise BadInput(
            f"--interface not given, and no route for {shown} to take it from: pass --interface "
            "with the multicast interface's name (e.g. --interface eth1)"
        )
    return route.interface, f"the kernel routes {shown} by it ({route})"


def route_findings(routes: RouteTable, interface: str, groups: Sequence[GroupPort]) -> list[Finding]:
    findings: list[Finding] = []
    if routes.unreadable:
        findings.append(
            Finding(
                Severity.WARN,
                CHECK,
                "/proc/net/route",
                f"{len(routes.unreadable)} line(s) could not be read (first: {routes.unreadable[0]!r}); "
                "the route checks use the rest",
            )
        )
    targets = [(g.group, g.group) for g in groups] or [(_ANY_GROUP, "multicast (224.0.0.0/4)")]
    for address, shown in targets:
        findings.append(_route(routes, interface, address, shown))
    return findings


def _route(routes: RouteTable, interface: str, address: str, shown: str) -> Finding:
    subject = f"route for {shown}"
    route = routes.route_for(address)
    add_route = (
        f"ip route add {address}/32 dev {interface}"
        if shown == address
        else (f"ip route add 224.0.0.0/4 dev {interface}")
    )
    if route is None or route.reject:
        return Finding(
            Severity.WARN,
            CHECK,
            subject,
            f"{'no route' if route is None else f'an unreachable route ({route})'}: a sender that names "
            "no interface gets 'Network is unreachable', and a join that names none fails",
            f"name {interface} in the application (IP_MULTICAST_IF, the join's interface), or {add_route}",
        )
    if route.interface != interface:
        return Finding(
            Severity.WARN,
            CHECK,
            subject,
            f"the kernel routes it by {route.interface} ({route}), not {interface}: a sender without "
            f"IP_MULTICAST_IF sends out of {route.interface}, and a join that names no interface joins "
            "there",
            f"name {interface} in the application (e.g. probe/relay --interface {interface}), or {add_route}",
        )
    return Finding(Severity.OK, CHECK, subject, f"routed by {interface} ({route})")
