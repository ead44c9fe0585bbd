"""Check 6: whether the kernel takes UDP GSO (sending runs of datagrams in one go, Linux 4.18) and
UDP GRO (receiving them in one go, Linux 5.0), as the relay and the probe ask for them.

Nothing breaks without them (:mod:`mcastkit.net.mmsg` falls back to one datagram per message),
but a busy feed then costs a system call or a trip through the stack per datagram.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from mcastkit.doctor.findings import Finding, Severity

# The option numbers mmsg sets (linux/udp.h): the same request the relay's sockets make.
from mcastkit.net.mmsg import SOL_UDP, UDP_GRO, UDP_SEGMENT

CHECK = "udp-offload"


@dataclass(frozen=True)
class UdpOffloads:
    """Whether the kernel took each option: ``None`` if it did, else why it refused."""

    gso: str | None
    gro: str | None


def probe_udp_offloads() -> UdpOffloads:
    """Ask a UDP socket for GSO and GRO, as :class:`~mcastkit.net.mmsg.BatchSender` and
    :class:`~mcastkit.net.mmsg.DatagramSlots` do (no root needed)."""

    def refused(option: int, value: int) -> str | None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.setsockopt(SOL_UDP, option, value)
            except OSError as err:
                return err.strerror or str(err)
        return None

    return UdpOffloads(gso=refused(UDP_SEGMENT, 0), gro=refused(UDP_GRO, 1))


def offload_findings(offloads: UdpOffloads, kernel_release: str | None) -> list[Finding]:
    kernel = f"kernel {kernel_release or 'unknown'}"
    findings: list[Finding] = []
    if offloads.gso is not None:
        findings.append(
            Finding(
                Severity.WARN,
                CHECK,
                "UDP GSO",
                f"{kernel} refuses UDP_SEGMENT ({offloads.gso}): the egress relay and the probe sender "
                "send one datagram per message, which costs CPU on a busy feed",
                "a kernel of 4.18 or later",
            )
        )
    if offloads.gro is not None:
        findings.append(
            Finding(
                Severity.WARN,
                CHECK,
                "UDP GRO",
                f"{kernel} refuses UDP_GRO ({offloads.gro}): the ingress relay and the probe receiver take "
                "one datagram per message",
                "a kernel of 5.0 or later",
            )
        )
    if not findings:
        findings.append(
            Finding(Severity.OK, CHECK, "UDP GSO and GRO", f"{kernel} takes both (the relay batches)")
        )
    return findings
