"""Tests that build their own network namespace: the skip rule and the namespace itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

needs_netns = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2 (network namespaces)"
)
#: The lab also needs iproute2's ``bridge`` (snooping table).
needs_lab = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("bridge") is None,
    reason="needs root and iproute2 (network namespaces, bridge)",
)


@contextmanager
def new_namespace(prefix: str) -> Iterator[str]:
    """A fresh namespace with loopback up, deleted afterwards."""
    name = f"mcktest-{prefix}-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def add_veth(namespace: str, name: str, address: str, *, mtu: int | None = None) -> None:
    """A veth pair with both ends in ``namespace``; ``name`` gets ``address``/24."""
    subprocess.run(
        ["ip", "-n", namespace, "link", "add", name, "type", "veth", "peer", "name", f"{name}p"], check=True
    )
    subprocess.run(["ip", "-n", namespace, "address", "add", f"{address}/24", "dev", name], check=True)
    for device in (name, f"{name}p"):
        if mtu is not None:
            subprocess.run(["ip", "-n", namespace, "link", "set", device, "mtu", str(mtu)], check=True)
        subprocess.run(["ip", "-n", namespace, "link", "set", device, "up"], check=True)
