"""``mcastkit doctor``: why multicast does not arrive on this host, one finding per fact.

Local checks read the kernel's files under a root directory (``/``; a fake tree in tests) and
need no credentials:

- :mod:`~mcastkit.doctor.igmp_version`: the IGMP version each interface speaks (IGMPv2 needed);
- :mod:`~mcastkit.doctor.membership`: whether a socket joined each group on the interface;
- :mod:`~mcastkit.doctor.routing`: which interface the kernel picks for a group;
- :mod:`~mcastkit.doctor.rp_filter`: whether reverse-path filtering drops what arrives;
- :mod:`~mcastkit.doctor.offload`: UDP GSO and GRO, which the relay and the probe use;
- :mod:`~mcastkit.doctor.capture` (``--listen``, root): TTLs and IGMP messages on the wire;
- :mod:`~mcastkit.doctor.namespaces` (``--netns``, root): all of it inside other namespaces.

Their inputs: :mod:`~mcastkit.doctor.procfs` (files), :mod:`~mcastkit.doctor.igmp_table`
(/proc/net/igmp), :mod:`~mcastkit.doctor.route_table` (/proc/net/route), :mod:`~mcastkit.doctor.host`
(the live probes). The AWS checks (``--aws``) are in :mod:`mcastkit.doctor.aws`.
:func:`~mcastkit.doctor.diagnose.diagnose` runs what :class:`~mcastkit.doctor.options.DoctorOptions`
asks for; each result is a :class:`~mcastkit.doctor.findings.Finding`.
"""

from mcastkit.doctor.diagnose import diagnose, run_checks
from mcastkit.doctor.findings import Diagnosis, Finding, Severity
from mcastkit.doctor.host import Host
from mcastkit.doctor.options import DoctorOptions

__all__ = ["Diagnosis", "DoctorOptions", "Finding", "Host", "Severity", "diagnose", "run_checks"]
