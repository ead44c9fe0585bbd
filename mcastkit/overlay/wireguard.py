"""WireGuard under the overlay: its VXLAN runs between tunnel addresses on ``mcw-<name>``, so
nothing of it crosses the underlay in clear, and a host takes frames only from peers whose keys
the config names.

The device is the kernel's WireGuard (Linux 5.6 and later, Amazon Linux 2023 included) where the
kernel has it, else wireguard-go (the same protocol in user space: Debian's ``wireguard-go``),
which exits by itself when ``down`` removes its device. Each peer: its public key, its endpoint
(underlay address and ``wireguard.port``), its tunnel address as the one address it may send
from, and a keepalive every 25 s, so a stateful firewall between them keeps the flow open.

The private key lives in ``--key-dir`` (``/etc/mcastkit/overlay`` by default) as ``<name>.key``,
mode 0600; ``mcastkit overlay key`` makes it once and prints the public key for the config.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mcastkit.config import Overlay, OverlayHost
from mcastkit.errors import BadInput, EnvironmentFailure
from mcastkit.overlay.links import VXLAN_OVERHEAD, Changes, link, set_address, set_mtu
from mcastkit.overlay.system import System

#: Bytes WireGuard adds over IPv4: outer IP 20, UDP 8, message header 16, authentication tag 16.
WIREGUARD_OVERHEAD = 60
KEEPALIVE_SECONDS = 25
DEFAULT_KEY_DIR = Path("/etc/mcastkit/overlay")


def key_path(overlay: Overlay, key_dir: Path) -> Path:
    return key_dir / f"{overlay.name}.key"


def ensure_key(overlay: Overlay, system: System, key_dir: Path) -> tuple[str, bool]:
    """This host's public key for ``overlay``, making its private key first if there is none;
    and whether it was made now."""
    system.require("wg")
    path = key_path(overlay, key_dir)
    created = not path.exists()
    if created:
        key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        private = system.run("wg", "genkey")
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as err:
            raise EnvironmentFailure(f"{path}: {err.strerror}") from None
        with os.fdopen(descriptor, "w") as file:
            file.write(private)
    return public_key(system, path), created


def public_key(system: System, path: Path) -> str:
    try:
        private = path.read_text()
    except OSError as err:
        raise EnvironmentFailure(f"{path}: {err.strerror}") from None
    return system.run("wg", "pubkey", stdin=private).strip()


@dataclass(frozen=True)
class PeerState:
    """One peer as ``wg show DEVICE dump`` lists it."""

    endpoint: str
    allowed_ips: str
    keepalive: str
    latest_handshake: int
    rx_bytes: int
    tx_bytes: int


def read_state(system: System, device: str) -> tuple[str, str, dict[str, PeerState]]:
    """(private key, listen port, peers by public key) of ``device``."""
    lines = system.run("wg", "show", device, "dump").splitlines()
    private, _public, port, *_ = lines[0].split("\t")
    peers = {}
    for line in lines[1:]:
        key, _preshared, endpoint, allowed, handshake, rx, tx, keepalive = line.split("\t")[:8]
        peers[key] = PeerState(endpoint, allowed, keepalive, int(handshake), int(rx), int(tx))
    return private, port, peers


def wanted_peers(overlay: Overlay, me: OverlayHost) -> dict[str, tuple[OverlayHost, PeerState]]:
    """Each peer's public key -> the peer, and what ``wg show`` lists for it once ``up`` is done."""
    assert overlay.wireguard is not None
    wanted = {}
    for peer in overlay.hosts:
        if peer is me:
            continue
        if peer.public_key is None:
            raise BadInput(
                f"overlay {overlay.name}: host {peer.name} has no public_key; run `mcastkit overlay key` "
                f"on {peer.name} and put the key it prints in the config as its public_key"
            )
        wanted[peer.public_key] = (
            peer,
            PeerState(
                endpoint=f"{peer.underlay}:{overlay.wireguard.port}",
                allowed_ips=f"{overlay.tunnel_address(peer)}/32",
                keepalive=str(KEEPALIVE_SECONDS),
                latest_handshake=0,
                rx_bytes=0,
                tx_bytes=0,
            ),
        )
    return wanted


def same_peer(present: PeerState | None, wanted: PeerState) -> bool:
    if present is None:
        return False
    return (present.endpoint, present.allowed_ips, present.keepalive) == (
        wanted.endpoint,
        wanted.allowed_ips,
        wanted.keepalive,
    )


def up(overlay: Overlay, me: OverlayHost, system: System, key_dir: Path, changes: Changes) -> None:
    """Make ``mcw-<name>`` match the config: key, port, peers, MTU (the overlay's plus VXLAN's 50
    bytes), the host's tunnel address."""
    assert overlay.wireguard is not None
    system.require("wg")
    path = key_path(overlay, key_dir)
    if not path.exists():
        raise BadInput(
            f"overlay {overlay.name}: no WireGuard key at {path}; run `mcastkit overlay key` on "
            f"{me.name} first and put the key it prints in the config as {me.name}'s public_key"
        )
    mine = public_key(system, path)
    if me.public_key != mine:
        raise BadInput(
            f"overlay {overlay.name}: host {me.name}'s public_key in the config is "
            f"{me.public_key or 'missing'}, but its key at {path} is {mine}; set public_key: {mine} "
            f"for {me.name} in every host's copy of the config"
        )
    wanted = wanted_peers(overlay, me)
    device = overlay.tunnel_device
    current = link(system, device)
    if current is None:
        how = _create(system, device)
        changes.add(f"{device}: WireGuard ({how}) on UDP {overlay.wireguard.port}")
    private, port, present = read_state(system, device)
    if private != path.read_text().strip() or port != str(overlay.wireguard.port):
        system.run("wg", "set", device, "private-key", str(path), "listen-port", str(overlay.wireguard.port))
        if current is not None:
            changes.add(f"{device}: key and port {overlay.wireguard.port} set")
    for key, (peer, state) in wanted.items():
        if not same_peer(present.get(key), state):
            system.run(
                "wg", "set", device, "peer", key, "endpoint", state.endpoint,
                "allowed-ips", state.allowed_ips, "persistent-keepalive", state.keepalive,
            )  # fmt: skip
            changes.add(f"{device}: peer {peer.name} at {state.endpoint}, tunnel {state.allowed_ips}")
    for key in sorted(set(present) - set(wanted)):
        system.run("wg", "set", device, "peer", key, "remove")
        changes.add(f"{device}: peer {key} removed (not in the overlay any more)")
    # The overlay's frames in VXLAN must fit the tunnel unfragmented.
    set_mtu(system, device, current, overlay.mtu + VXLAN_OVERHEAD, changes)
    set_address(system, device, f"{overlay.tunnel_address(me)}/{overlay.wireguard.cidr.prefixlen}", changes)
    system.run("ip", "link", "set", device, "up")


def _create(system: System, device: str) -> str:
    if system.returncode("ip", "link", "add", device, "type", "wireguard") == 0:
        return "kernel"
    if not system.has("wireguard-go"):
        raise EnvironmentFailure(
            f"`ip link add {device} type wireguard` failed: this kernel has no WireGuard (Linux 5.6 and "
            "later have it) and wireguard-go is not installed; install wireguard-go (Debian, Ubuntu: "
            "apt-get install wireguard-go) or use a kernel with WireGuard"
        )
    system.run("wireguard-go", device)
    return "wireguard-go"
