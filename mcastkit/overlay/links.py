"""What ``up`` and ``down`` share for any of the overlay's devices: the changes they report, and
a device's MTU and address made to match."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mcastkit.overlay.system import System

#: Bytes VXLAN adds over IPv4: outer IP 20, UDP 8, VXLAN 8, inner Ethernet 14.
VXLAN_OVERHEAD = 50


@dataclass
class Changes:
    """What ``up`` or ``down`` did, one line per change (nothing: it was already so)."""

    lines: list[str] = field(default_factory=list)

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)


def link(system: System, device: str) -> dict[str, Any] | None:
    """``device`` as ``ip -d link`` shows it, or ``None`` when there is none."""
    for found in system.json("ip", "-j", "-d", "link", "show"):
        if found.get("ifname") == device:
            return dict(found)
    return None


def set_mtu(system: System, device: str, current: dict[str, Any] | None, mtu: int, changes: Changes) -> None:
    if current is None or current.get("mtu") != mtu:
        system.run("ip", "link", "set", device, "mtu", str(mtu))
        changes.add(f"{device}: MTU {mtu}")


def set_address(system: System, device: str, wanted: str, changes: Changes) -> None:
    """``wanted`` (``ADDRESS/PREFIX``) the device's only IPv4 address."""
    links = system.json("ip", "-j", "-4", "address", "show", "dev", device)
    present = {f"{a['local']}/{a['prefixlen']}" for entry in links for a in entry.get("addr_info", [])}
    for stale in sorted(present - {wanted}):
        system.run("ip", "address", "delete", stale, "dev", device)
        changes.add(f"{device}: address {stale} removed")
    if wanted not in present:
        system.run("ip", "address", "add", wanted, "dev", device)
        changes.add(f"{device}: address {wanted}")
