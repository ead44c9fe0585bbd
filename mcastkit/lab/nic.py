"""Turn a veth's receive coalescing (GRO) and TCP segmentation offload on or off, as ethtool -K does.

A physical NIC coalesces bursts of one flow (GRO) by default; a veth does so only when GRO is
switched on, and only for frames whose sending end has no TCP segmentation offload (else it
takes them for locally built GSO packets). The lab sets both where a host receives multicast
(the ingress host, the receivers), so they meet what a real NIC hands them.
Run as ``python -m mcastkit.lab.nic IFNAME [gro=on|off] [tso=on|off]`` inside the namespace (no
ethtool needed); prints the settings it leaves.
"""

from __future__ import annotations

import ctypes
import fcntl
import socket
import struct
import sys

_SIOCETHTOOL = 0x8946
#: ethtool's legacy one-feature commands: (get, set)
_COMMANDS = {"gro": (0x2B, 0x2C), "tso": (0x1E, 0x1F)}
#: struct ethtool_value {u32 cmd; u32 data;}
_VALUE = struct.Struct("@II")


def _call(device: str, command: int, data: int = 0) -> int:
    value = ctypes.create_string_buffer(_VALUE.pack(command, data), _VALUE.size)
    request = struct.pack("@16sP", device.encode(), ctypes.addressof(value)).ljust(40, b"\0")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        fcntl.ioctl(sock.fileno(), _SIOCETHTOOL, request)
    return int(_VALUE.unpack(value.raw)[1])


def offload(device: str, feature: str) -> bool:
    return bool(_call(device, _COMMANDS[feature][0]))


def set_offload(device: str, feature: str, enabled: bool) -> None:
    _call(device, _COMMANDS[feature][1], int(enabled))


def main(argv: list[str]) -> int:
    settings = [arg.partition("=") for arg in argv[1:]]
    if not argv or not all(feature in _COMMANDS and state in ("on", "off") for feature, _, state in settings):
        print(
            f"usage: python -m mcastkit.lab.nic IFNAME [{{{'|'.join(_COMMANDS)}}}=on|off ...]",
            file=sys.stderr,
        )
        return 2
    device = argv[0]
    try:
        for feature, _, state in settings:
            set_offload(device, feature, state == "on")
        print(" ".join(f"{feature}={'on' if offload(device, feature) else 'off'}" for feature in _COMMANDS))
    except OSError as err:
        print(f"{device}: {err.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
