"""WireGuard under the overlay: its VXLAN runs between tunnel addresses on ``mcw-<name>``, so
nothing of it crosses the underlay in clear, and a host takes frames only from peers whose keys
the config names.

The device is the kernel's WireGuard (Linux 5.6 and later; that Amazon Linux 2023 ships it is
inferred, not checked) where the kernel has it, else wireguard-go (the same protocol in user
space: Debian's ``wireguard-go``), which exits by itself when ``down`` removes its device. Each
peer: its public key, its endpoint (underlay address and ``wireguard.port``), its tunnel address
as the one address it may send from, and a keepalive every 25 s, so a stateful firewall between
them keeps the flow open.

The private key lives in ``--key-dir`` (``/etc/mcastkit/overlay`` by default) as ``<name>.key``,
mode 0600; ``mcastkit overlay key`` makes it once and prints the public key for the config.
"""

from __future__ import annotations

import os
import time
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
#: Where wireguard-go keeps a device's control socket (``wg`` finds it there).
WIREGUARD_GO_SOCKETS = Path("/var/run/wireguard")


def key_path(overlay: Overlay, key_dir: Path) -> Path:
    return key_dir / f"{overlay.name}.key"


def ensure_key(overlay: Overlay, system: System, key_dir: Path) -> tuple[str, bool]:
    """This host's public key for ``overlay``, making its private key first if there is none;
    and whether it was made now. The key is written whole to a file of its own and linked into
    place, so a crash leaves no empty key and two runs at once keep the first one's."""
    system.require("wg")
    path = key_path(overlay, key_dir)
    created = False
    if not path.exists():
        key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        private = system.run("wg", "genkey")
        draft = key_dir / f".{overlay.name}.key.{os.getpid()}"
        try:
            descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(private)
                file.flush()
                os.fsync(file.fileno())
            try:
                os.link(draft, path)
                created = True
            except FileExistsError:
                pass  # another run made it first: that one is the key
        except OSError as err:
            raise EnvironmentFailure(f"{path}: {err.strerror}") from None
        finally:
            draft.unlink(missing_ok=True)
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


@dataclass(frozen=True)
class WantedPeer:
    """One peer as the config has it."""

    host: OverlayHost
    endpoint: str
    allowed_ips: str
    keepalive: str = str(KEEPALIVE_SECONDS)

    def matches(self, state: PeerState | None) -> bool:
        return state is not None and (state.endpoint, state.allowed_ips, state.keepalive) == (
            self.endpoint,
            self.allowed_ips,
            self.keepalive,
        )


def read_state(system: System, device: str) -> tuple[str, str, dict[str, PeerState]]:
    """(public key, listen port, peers by public key) of ``device`` (the private key it also
    prints is not kept)."""
    lines = system.run("wg", "show", device, "dump").splitlines()
    _private, public, port, *_ = lines[0].split("\t")
    peers = {}
    for line in lines[1:]:
        key, _preshared, endpoint, allowed, handshake, rx, tx, keepalive = line.split("\t")[:8]
        peers[key] = PeerState(endpoint, allowed, keepalive, int(handshake), int(rx), int(tx))
    return public, port, peers


def missing_keys(overlay: Overlay, me: OverlayHost) -> list[str]:
    """The peers the config gives no public key."""
    return [h.name for h in overlay.hosts if h is not me and h.public_key is None]


def wanted_peers(overlay: Overlay, me: OverlayHost) -> dict[str, WantedPeer]:
    """Each peer's public key -> the peer as the config has it (peers without a key left out)."""
    assert overlay.wireguard is not None
    return {
        peer.public_key: WantedPeer(
            peer, f"{peer.underlay}:{overlay.wireguard.port}", f"{overlay.vxlan_endpoint(peer)}/32"
        )
        for peer in overlay.hosts
        if peer is not me and peer.public_key is not None
    }


def check(overlay: Overlay, me: OverlayHost, system: System, key_dir: Path) -> str:
    """Before ``up`` changes anything: the tools, this host's key (the one the config names), a
    key for every peer. Returns this host's public key."""
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
    missing = missing_keys(overlay, me)
    if missing:
        name = missing[0]
        raise BadInput(
            f"overlay {overlay.name}: host {name} has no public_key; run `mcastkit overlay key` "
            f"on {name} and put the key it prints in the config as its public_key"
        )
    return mine


def up(overlay: Overlay, me: OverlayHost, system: System, key_dir: Path, changes: Changes) -> None:
    """Make ``mcw-<name>`` match the config (after :func:`check`): key, port, peers, MTU (the
    overlay's plus VXLAN's 50 bytes), the host's tunnel address."""
    assert overlay.wireguard is not None
    mine = check(overlay, me, system, key_dir)
    path = key_path(overlay, key_dir)
    device = overlay.tunnel_device
    current = link(system, device)
    if current is None:
        how = _create(system, device)
        changes.add(f"{device}: WireGuard ({how}) on UDP {overlay.wireguard.port}")
    public, port, present = read_state(system, device)
    if public != mine or port != str(overlay.wireguard.port):
        system.run("wg", "set", device, "private-key", str(path), "listen-port", str(overlay.wireguard.port))
        if current is not None:
            changes.add(f"{device}: key and port {overlay.wireguard.port} set")
    wanted = wanted_peers(overlay, me)
    for key, peer in wanted.items():
        if not peer.matches(present.get(key)):
            system.run(
                "wg", "set", device, "peer", key, "endpoint", peer.endpoint,
                "allowed-ips", peer.allowed_ips, "persistent-keepalive", peer.keepalive,
            )  # fmt: skip
            changes.add(f"{device}: peer {peer.host.name} at {peer.endpoint}, tunnel {peer.allowed_ips}")
    for key in sorted(set(present) - set(wanted)):
        system.run("wg", "set", device, "peer", key, "remove")
        changes.add(f"{device}: peer {key} removed (not in the overlay any more)")
    # The overlay's frames in VXLAN must fit the tunnel unfragmented.
    set_mtu(system, device, current, overlay.mtu + VXLAN_OVERHEAD, changes)
    set_address(system, device, f"{overlay.vxlan_endpoint(me)}/{overlay.wireguard.cidr.prefixlen}", changes)
    system.run("ip", "link", "set", device, "up")


#: wireguard-go stays in the foreground, or keeps our output pipes, with these set.
_FOREGROUND = ("LOG_LEVEL", "WG_PROCESS_FOREGROUND")


def _create(system: System, device: str) -> str:
    if system.returncode("ip", "link", "add", device, "type", "wireguard") == 0:
        return "kernel"
    if not system.has("wireguard-go"):
        raise EnvironmentFailure(
            f"`ip link add {device} type wireguard` failed: this kernel has no WireGuard (Linux 5.6 and "
            "later have it) and wireguard-go is not installed; install wireguard-go (Debian, Ubuntu: "
            "apt-get install wireguard-go) or use a kernel with WireGuard"
        )
    environment = {key: value for key, value in os.environ.items() if key not in _FOREGROUND}
    system.run("wireguard-go", device, env=environment)
    return "wireguard-go"


def remove(system: System, device: str) -> None:
    """Delete the device; a wireguard-go behind it exits, and its control socket is waited for, so
    an ``up`` right after starts a new one that the old one's exit cannot unlink."""
    system.run("ip", "link", "delete", device)
    socket_path = WIREGUARD_GO_SOCKETS / f"{device}.sock"
    deadline = time.monotonic() + 5
    while socket_path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
