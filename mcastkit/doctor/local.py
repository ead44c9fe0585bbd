"""The local checks in order, on the files of one network namespace: no credentials; root only for
``--listen``."""

from __future__ import annotations

from collections.abc import Iterator

from mcastkit.doctor.capture import Traffic, traffic_findings
from mcastkit.doctor.findings import Finding, Severity
from mcastkit.doctor.host import Host
from mcastkit.doctor.igmp_table import PROC_NET_IGMP, parse_igmp_table
from mcastkit.doctor.igmp_version import igmp_version_findings
from mcastkit.doctor.membership import membership_findings
from mcastkit.doctor.offload import offload_findings
from mcastkit.doctor.options import DoctorOptions
from mcastkit.doctor.procfs import ProcFs
from mcastkit.doctor.route_table import PROC_NET_ROUTE, RouteTable, parse_route_table
from mcastkit.doctor.routing import default_interface, route_findings
from mcastkit.doctor.rp_filter import rp_filter_findings
from mcastkit.errors import BadInput

CHECK_INTERFACE = "interface"


def read_routes(proc: ProcFs) -> RouteTable | None:
    text = proc.text(PROC_NET_ROUTE)
    return None if text is None else parse_route_table(text)


def select_interface(options: DoctorOptions, proc: ProcFs) -> tuple[str, str | None]:
    """The interface to check, and why it was chosen when ``--interface`` did not name it."""
    if options.interface is not None:
        if not proc.has_interface(options.interface):
            names = ", ".join(proc.interfaces()) or "none"
            raise BadInput(
                f"--interface {options.interface}: no such interface in this network namespace "
                f"(interfaces: {names})"
            )
        return options.interface, None
    return default_interface(read_routes(proc) or RouteTable(()), options.groups)


def local_findings(options: DoctorOptions, host: Host, interface: str, why: str | None) -> Iterator[Finding]:
    proc = host.proc
    if why is not None:
        yield Finding(
            Severity.OK,
            CHECK_INTERFACE,
            interface,
            f"checked because {why}; pass --interface to check another",
        )
    igmp_text = proc.text(PROC_NET_IGMP)
    table = parse_igmp_table(igmp_text or "")
    if igmp_text is None:
        yield Finding(
            Severity.WARN,
            "igmp-membership",
            "/proc/net/igmp",
            "cannot be read: memberships and the version in use are unknown (a kernel without IPv4 "
            "multicast?)",
        )
    elif table.unreadable:
        yield Finding(
            Severity.WARN,
            "igmp-membership",
            "/proc/net/igmp",
            f"{len(table.unreadable)} line(s) could not be read (first: {table.unreadable[0]!r}); the checks "
            "use the rest",
        )
    yield from igmp_version_findings(proc, table, interface)
    yield from membership_findings(table, interface, options.groups)
    routes = read_routes(proc)
    if routes is None:
        yield Finding(
            Severity.WARN,
            "route",
            "/proc/net/route",
            "cannot be read: the route and rp_filter checks assume no route",
        )
        routes = RouteTable(())
    yield from route_findings(routes, interface, options.groups)
    yield from rp_filter_findings(proc, routes, interface, options.sources)
    yield from offload_findings(host.udp_offloads(), proc.kernel_release())
    if options.listen:
        traffic = Traffic()
        host.capture(interface, options.listen, traffic)
        yield from traffic_findings(traffic, interface, options.groups, options.listen)
