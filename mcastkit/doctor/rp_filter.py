"""Check 4: reverse-path filtering, which can drop every arriving multicast datagram in silence.

For a multicast datagram from a real source the kernel validates the source like any other
(``ip_mc_validate_source`` calls ``fib_validate_source`` in net/ipv4/route.c). With
``rp_filter`` strict (1) the route back to the source must leave by the interface the datagram
came in on; loose (2) needs any route back. The value in force is the larger of
``net.ipv4.conf.all.rp_filter`` and the interface's own. IGMP queries come from 0.0.0.0 and are
not filtered, so a host filtered this way still joins, and the Transit Gateway still sends.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from mcastkit.doctor.findings import Finding, Severity
from mcastkit.doctor.procfs import ProcFs, sysctl_name
from mcastkit.doctor.route_table import RouteTable

CHECK = "rp-filter"
_MODES = {0: "off", 1: "strict", 2: "loose"}
_STRICT = 1


def rp_filter_findings(
    proc: ProcFs,
    routes: RouteTable,
    interface: str,
    sources: Sequence[ipaddress.IPv4Network],
) -> list[Finding]:
    all_value = proc.conf("all", "rp_filter")
    own = proc.conf(interface, "rp_filter")
    effective = max(all_value or 0, own or 0)
    settings = (
        f"rp_filter all={'unreadable' if all_value is None else all_value}, "
        f"{interface}={'unreadable' if own is None else own}"
    )
    subject = f"{interface} rp_filter"
    if effective != _STRICT:
        return [
            Finding(
                Severity.OK,
                CHECK,
                subject,
                f"{_MODES.get(effective, str(effective))} ({settings}): arriving multicast is not dropped "
                "for the route back to its source",
            )
        ]
    fix = (
        f"sysctl -w {sysctl_name(interface, 'rp_filter')}=2 (loose: the larger of all and {interface} "
        "applies, so this is enough), and persist it in /etc/sysctl.d/"
    )
    if sources:
        return [_source(routes, interface, source, settings, fix) for source in sources]
    defaults = routes.default_interfaces()
    if defaults and defaults[0] == interface:
        return [
            Finding(
                Severity.OK,
                CHECK,
                subject,
                f"strict ({settings}), and the default route leaves by {interface}, so routes back to "
                "senders lead through it (pass --source to check a sender)",
            )
        ]
    default = defaults[0] if defaults else "no interface"
    return [
        Finding(
            Severity.WARN,
            CHECK,
            subject,
            f"strict ({settings}), and the default route leaves by {default}, not {interface}: multicast "
            f"from a sender outside {interface}'s own subnets is dropped before any socket sees it",
            f"{fix}; or pass --source with the senders' addresses to check them",
        )
    ]


def _source(
    routes: RouteTable, interface: str, source: ipaddress.IPv4Network, settings: str, fix: str
) -> Finding:
    subject = f"{interface} rp_filter for {source}"
    route = routes.route_for(str(source.network_address))
    if route is not None and not route.reject and route.interface == interface:
        return Finding(
            Severity.OK, CHECK, subject, f"strict ({settings}), and the route back leaves by {interface}"
        )
    back = (
        "there is no route back"
        if route is None or route.reject
        else (f"the route back leaves by {route.interface} ({route})")
    )
    return Finding(
        Severity.PROBLEM,
        CHECK,
        subject,
        f"strict ({settings}) drops multicast from {source} arriving on {interface}: {back}",
        fix,
    )
