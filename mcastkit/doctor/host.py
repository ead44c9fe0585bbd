"""The machine the local checks look at: files under a root directory, and the few live probes
(socket options, a packet capture, commands in other namespaces). Tests replace any of them."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from mcastkit.doctor.capture import Traffic, capture_traffic
from mcastkit.doctor.namespaces import Runner, run_command
from mcastkit.doctor.offload import UdpOffloads, probe_udp_offloads
from mcastkit.doctor.procfs import ProcFs


def _is_root() -> bool:
    return os.geteuid() == 0


@dataclass(frozen=True)
class Host:
    proc: ProcFs = field(default_factory=ProcFs)
    udp_offloads: Callable[[], UdpOffloads] = probe_udp_offloads
    #: ``capture(interface, seconds, traffic)`` counts what crosses the interface into ``traffic``.
    capture: Callable[[str, float, Traffic], None] = capture_traffic
    #: Whether this process may enter other network namespaces.
    privileged: Callable[[], bool] = _is_root
    run: Runner = run_command
