"""The overlay's two iptables chains, each jumped to first in its built-in chain.

- ``MCK-<NAME>-OUT`` (from ``OUTPUT -o mck-<name>``): IGMP, link-local control (224.0.0.0/24:
  mDNS, LLMNR...) and the overlay's groups pass; any other multicast is dropped and counted
  (the sender gets ``EPERM`` at once);
- ``MCK-<NAME>-IN`` (from ``INPUT -p udp --dport <port>``): VXLAN from the overlay's hosts passes;
  from anyone else it is dropped and counted (a VXLAN device without learning takes any packet
  with its VNI, from any source). With WireGuard it is jumped to for both ports: WireGuard passes
  from the hosts' underlay addresses, VXLAN only out of the WireGuard device from a peer's tunnel
  address (the VXLAN socket listens on every address: without this, VXLAN in clear on the
  underlay would still reach the overlay).

Both jumps are inserted at the top, so an earlier ``ACCEPT`` (ufw, a distribution's rules) cannot
bypass them. ``-w`` waits for the xtables lock another tool holds. One overlay per UDP port on a
host: a second overlay's ``IN`` chain would drop the first one's peers.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcastkit.config import Overlay, OverlayHost
from mcastkit.overlay.system import System

#: IGMP (protocol 2): joins and leaves always leave.
IGMP = "2"
LINK_LOCAL = "224.0.0.0/24"


@dataclass(frozen=True)
class Chain:
    name: str
    #: The rule in the built-in chain that jumps here, without the chain's name.
    jump: tuple[str, ...]
    rules: tuple[tuple[str, ...], ...]

    @property
    def builtin(self) -> str:
        return self.jump[0]


def chains(overlay: Overlay, me: OverlayHost | None) -> tuple[Chain, Chain]:
    """The ``OUT`` and ``IN`` chains of ``overlay`` on host ``me`` (``None``: for removal only)."""
    base = f"MCK-{overlay.name.upper()}"
    out_rules: list[tuple[str, ...]] = [("-p", IGMP, "-j", "RETURN"), ("-d", LINK_LOCAL, "-j", "RETURN")]
    out_rules += [
        ("-p", "udp", "-d", f"{g.group}/32", "--dport", str(g.port), "-j", "RETURN") for g in overlay.groups
    ]
    out_rules.append(("-d", "224.0.0.0/4", "-j", "DROP"))
    peers = [h for h in overlay.hosts if h is not me]
    ports: tuple[str, ...] = ("--dport", str(overlay.port))
    in_rules: list[tuple[str, ...]] = [("-s", f"{h.underlay}/32", "-j", "RETURN") for h in peers]
    if overlay.wireguard is not None:
        ports = ("-m", "multiport", "--dports", f"{overlay.wireguard.port},{overlay.port}")
        wireguard, vxlan = (
            ("-p", "udp", "--dport", str(overlay.wireguard.port)),
            ("-p", "udp", "--dport", str(overlay.port)),
        )
        in_rules = [(*wireguard, *rule) for rule in in_rules]
        in_rules += [
            ("-i", overlay.tunnel_device, *vxlan, "-s", f"{overlay.vxlan_endpoint(h)}/32", "-j", "RETURN")
            for h in peers
        ]
    in_rules.append(("-j", "DROP"))
    out = Chain(f"{base}-OUT", ("OUTPUT", "-o", overlay.device, "-j", f"{base}-OUT"), tuple(out_rules))
    inbound = Chain(f"{base}-IN", ("INPUT", "-p", "udp", *ports, "-j", f"{base}-IN"), tuple(in_rules))
    return out, inbound


def iptables(system: System, *args: str, check: bool = True) -> str:
    return system.run("iptables", "-w", *args, check=check)


def present(system: System, rule: tuple[str, ...]) -> bool:
    """Whether ``rule`` (chain first) is in place: ``iptables -C`` exits 1 when it is not."""
    return system.returncode("iptables", "-w", "-C", *rule) == 0


def install(system: System, chain: Chain) -> list[str]:
    """Make ``chain`` hold its rules, jumped to first; return what changed."""
    changed = []
    current = iptables(system, "-S", chain.name, check=False)  # "-N CHAIN" first when it exists
    exists = bool(current.strip())
    listed = [line for line in current.splitlines() if line.startswith("-A ")]
    # iptables prints rules its own way (-p igmp, -m udp): ask whether each one is there.
    if (
        not exists
        or len(listed) != len(chain.rules)
        or not all(present(system, (chain.name, *r)) for r in chain.rules)
    ):
        iptables(system, "-F" if exists else "-N", chain.name)
        for rule in chain.rules:
            iptables(system, "-A", chain.name, *rule)
        changed.append(f"filter {chain.name}: {len(chain.rules)} rules")
    if not jumped_first(system, chain):
        # Every jump to the chain goes, another port's from an earlier config included.
        for number in reversed(_jumps(system, chain)):
            iptables(system, "-D", chain.builtin, str(number))
        iptables(system, "-I", chain.builtin, "1", *chain.jump[1:])
        changed.append(f"filter {chain.name}: jumped to first from {chain.builtin}")
    iptables(system, "-Z", chain.name)
    return changed


def _jumps(system: System, chain: Chain) -> list[int]:
    """The rule numbers in the built-in chain that jump to ``chain``."""
    listing = iptables(system, "-L", chain.builtin, "-n", "--line-numbers").splitlines()
    rows = [line.split() for line in listing[2:]]
    return [int(row[0]) for row in rows if len(row) > 1 and row[1] == chain.name]


def jumped_first(system: System, chain: Chain) -> bool:
    """Whether the built-in chain's first rule is the jump as the config has it, and the only one."""
    return _jumps(system, chain) == [1] and present(system, chain.jump)


def remove(system: System, chain: Chain) -> list[str]:
    removed = []
    for number in reversed(_jumps(system, chain)):
        iptables(system, "-D", chain.builtin, str(number))
    if system.returncode("iptables", "-w", "-S", chain.name) == 0:
        iptables(system, "-F", chain.name)
        iptables(system, "-X", chain.name)
        removed.append(f"filter {chain.name}: removed")
    return removed


def dropped(system: System, chain: Chain) -> int | None:
    """Packets the chain's final DROP counted since ``up`` (``None``: the chain is not there)."""
    if system.returncode("iptables", "-w", "-S", chain.name) != 0:
        return None
    for line in iptables(system, "-L", chain.name, "-v", "-x", "-n").splitlines():
        columns = line.split()
        if len(columns) > 2 and columns[2] == "DROP" and columns[0].isdigit():
            return int(columns[0])
    return 0
