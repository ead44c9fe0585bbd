"""The kernel's files the local checks read, under a root directory: ``/`` on a host, a fake tree
in tests (``tmp_path/proc/sys/net/ipv4/conf/eth1/force_igmp_version``...).

Reading never needs root. A file that is missing or does not hold what it should reads as
``None``; the checks say so instead of failing.
"""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ByteOrder = Literal["little", "big"]

#: The per-interface IPv4 sysctls (``net.ipv4.conf.<entry>.<key>``).
IPV4_CONF = "proc/sys/net/ipv4/conf"
#: ``ip netns add NAME`` bind-mounts the namespace here.
NETNS_DIR = "run/netns"
#: Entries of IPV4_CONF that are not interfaces: ``all`` applies to every interface, ``default``
#: is copied to each interface created after it is set.
CONF_ENTRIES = ("all", "default")


def kernel_address(text: str, byteorder: ByteOrder = sys.byteorder) -> str:
    """An IPv4 address as /proc/net/igmp and /proc/net/route print it (``%08X`` of the address as
    it lies in memory, in network order, read as a host-order number) on a machine of
    ``byteorder``: ``010A0AEF`` is 239.10.10.1 on little-endian x86 and arm64."""
    return socket.inet_ntoa(int(text, 16).to_bytes(4, byteorder))


def sysctl_name(entry: str, key: str) -> str:
    """``net.ipv4.conf.<entry>.<key>`` as ``sysctl -w`` takes it: with slashes when the interface's
    name has a dot (a VLAN such as ``eth0.100``), which the dotted form would split."""
    if "." in entry:
        return f"net/ipv4/conf/{entry}/{key}"
    return f"net.ipv4.conf.{entry}.{key}"


@dataclass(frozen=True)
class ProcFs:
    root: Path = Path("/")

    def path(self, relative: str) -> Path:
        return self.root / relative

    def text(self, relative: str) -> str | None:
        """A file's text, or ``None`` if it cannot be read."""
        try:
            return self.path(relative).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    def conf(self, entry: str, key: str) -> int | None:
        """``net.ipv4.conf.<entry>.<key>`` as a whole number (``None``: missing or not a number)."""
        text = self.text(f"{IPV4_CONF}/{entry}/{key}")
        try:
            return None if text is None else int(text.strip())
        except ValueError:
            return None

    def interfaces(self) -> list[str]:
        """The interfaces that have IPv4 settings in this network namespace, sorted."""
        try:
            entries = [p.name for p in self.path(IPV4_CONF).iterdir() if p.is_dir()]
        except OSError:
            return []
        return sorted(name for name in entries if name not in CONF_ENTRIES)

    def has_interface(self, name: str) -> bool:
        return name not in CONF_ENTRIES and self.path(f"{IPV4_CONF}/{name}").is_dir()

    def mac(self, interface: str) -> str | None:
        """The interface's hardware address, lower case (``0a:1b:...``)."""
        text = self.text(f"sys/class/net/{interface}/address")
        return text.strip().lower() if text and text.strip() else None

    def kernel_release(self) -> str | None:
        text = self.text("proc/sys/kernel/osrelease")
        return text.strip() if text and text.strip() else None

    def namespaces(self) -> list[str]:
        """Named network namespaces (``ip netns list``), sorted."""
        try:
            return sorted(p.name for p in self.path(NETNS_DIR).iterdir())
        except OSError:
            return []
