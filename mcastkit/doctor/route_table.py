"""``/proc/net/route``: the main IPv4 routing table, and the route the kernel picks for an address.

Each line after the header is ``Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window
IRTT``, addresses in the byte order :func:`~mcastkit.doctor.procfs.kernel_address` reads. The
kernel picks the longest prefix that matches, then the lowest metric.

Not seen here (inferred limits of the file, not checked against every kernel): routes in other
tables chosen by ``ip rule`` (policy routing, VRFs), and the local table. A host that steers
multicast with policy routing needs ``ip route get GROUP`` to be sure.
"""

from __future__ import annotations

import ipaddress
import sys
from dataclasses import dataclass

from mcastkit.doctor.procfs import ByteOrder, kernel_address

PROC_NET_ROUTE = "proc/net/route"
#: Route flags (linux/route.h).
_RTF_UP = 0x0001
_RTF_REJECT = 0x0200


@dataclass(frozen=True)
class Route:
    interface: str
    network: ipaddress.IPv4Network
    gateway: str
    metric: int
    #: An ``unreachable``/``prohibit`` route: the kernel refuses to send by it.
    reject: bool = False

    def __str__(self) -> str:
        via = f" via {self.gateway}" if self.gateway != "0.0.0.0" else ""
        where = "unreachable" if self.reject else f"dev {self.interface}"
        return f"{'default' if self.network.prefixlen == 0 else self.network}{via} {where}"


@dataclass(frozen=True)
class RouteTable:
    routes: tuple[Route, ...]
    unreadable: tuple[str, ...] = ()

    def route_for(self, address: str) -> Route | None:
        """The route the kernel takes to ``address`` in this table, or None."""
        target = ipaddress.IPv4Address(address)
        matching = [r for r in self.routes if target in r.network]
        if not matching:
            return None
        return min(matching, key=lambda r: (-r.network.prefixlen, r.metric))

    def default_interfaces(self) -> list[str]:
        """The interfaces of the default routes, best first."""
        defaults = sorted((r for r in self.routes if r.network.prefixlen == 0), key=lambda r: r.metric)
        return [r.interface for r in defaults if not r.reject]


def parse_route_table(text: str, byteorder: ByteOrder = sys.byteorder) -> RouteTable:
    routes: list[Route] = []
    unreadable: list[str] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if not fields:
            continue
        try:
            interface, destination, gateway, flags, _refs, _use, metric, mask = fields[:8]
            flag_bits = int(flags, 16)
            network = ipaddress.IPv4Network(
                f"{kernel_address(destination, byteorder)}/{kernel_address(mask, byteorder)}"
            )
            route = Route(
                interface=interface,
                network=network,
                gateway=kernel_address(gateway, byteorder),
                metric=int(metric),
                reject=bool(flag_bits & _RTF_REJECT) or interface == "*",
            )
        except ValueError:
            unreadable.append(line.strip())
            continue
        if flag_bits & _RTF_UP:
            routes.append(route)
    return RouteTable(tuple(routes), tuple(unreadable))
