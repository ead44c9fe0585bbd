"""Check 1: the IGMP version each interface speaks. The Transit Gateway understands IGMPv2 only, and
Linux speaks IGMPv3 unless told otherwise.

The kernel's rule (``IGMP_V1_SEEN``/``IGMP_V2_SEEN`` in net/ipv4/igmp.c): an interface speaks v1
when ``net.ipv4.conf.all.force_igmp_version`` or its own is 1, else v2 when either is 2, else v3
(unless it heard a v1 or v2 querier recently, which /proc/net/igmp's ``Querier`` column shows).
So v1 beats v2, and it is not the larger of the two values that counts. ``default`` is read only
when an interface is created: it is what a pod's or a task's interface starts with.
"""

from __future__ import annotations

from mcastkit.doctor.findings import Finding, Severity
from mcastkit.doctor.igmp_table import IgmpTable
from mcastkit.doctor.procfs import ProcFs, sysctl_name

CHECK = "igmp-version"
_KEY = "force_igmp_version"
#: Interfaces whose IGMP never reaches a Transit Gateway.
_LOOPBACK = "lo"


def forced_version(all_value: int | None, interface_value: int | None) -> int | None:
    """The version the kernel forces on an interface (1 or 2), or ``None`` (v3, the default)."""
    values = (all_value, interface_value)
    if 1 in values:
        return 1
    if 2 in values:
        return 2
    return None


def force_v2_fix(interface: str) -> str:
    settings = " ".join(f"{sysctl_name(entry, _KEY)}=2" for entry in ("all", interface, "default"))
    return (
        f"sysctl -w {settings} (and persist it in /etc/sysctl.d/; mcastkit's bootstrap/igmpv2.sh does "
        "both), then restart the receivers so that they join again"
    )


def _shown(value: int | None) -> str:
    return "unreadable" if value is None else str(value)


def igmp_version_findings(proc: ProcFs, table: IgmpTable, interface: str) -> list[Finding]:
    """The version of ``interface`` (a problem unless v2), and of other interfaces holding groups."""
    all_value = proc.conf("all", _KEY)
    default_value = proc.conf("default", _KEY)
    findings = [_multicast_interface(proc, table, interface, all_value, default_value)]
    if forced_version(all_value, proc.conf(interface, _KEY)) == 2 and 2 not in (all_value, default_value):
        findings.append(
            Finding(
                Severity.WARN,
                CHECK,
                "interfaces created later",
                f"{interface} is forced to IGMPv2 on its own, but neither all nor default is "
                f"(all={_shown(all_value)}, default={_shown(default_value)}): an interface created "
                "after now (a pod's, a task's, a second ENI) starts with IGMPv3",
                f"sysctl -w {sysctl_name('all', _KEY)}=2 {sysctl_name('default', _KEY)}=2",
            )
        )
    for name, device in table.devices.items():
        if name in (interface, _LOOPBACK) or not device.data_groups:
            continue
        version = forced_version(all_value, proc.conf(name, _KEY))
        if version != 2:
            findings.append(
                Finding(
                    Severity.WARN,
                    CHECK,
                    f"{name} IGMP version",
                    f"{name} holds {', '.join(device.data_groups)} and speaks IGMPv{version or 3} "
                    f"(/proc/net/igmp: {device.querier}): if it faces a Transit Gateway, its joins go "
                    "unheard",
                    force_v2_fix(name),
                )
            )
    return findings


def _multicast_interface(
    proc: ProcFs, table: IgmpTable, interface: str, all_value: int | None, default_value: int | None
) -> Finding:
    own = proc.conf(interface, _KEY)
    version = forced_version(all_value, own)
    device = table.devices.get(interface)
    querier = device.querier if device else None
    settings = (
        f"force_igmp_version all={_shown(all_value)}, {interface}={_shown(own)}, "
        f"default={_shown(default_value)}"
    )
    seen = f"; /proc/net/igmp shows {querier}" if querier else ""
    subject = f"{interface} IGMP version"
    if version == 2:
        if querier not in (None, "V2"):
            return Finding(
                Severity.WARN,
                CHECK,
                subject,
                f"the settings force IGMPv2 ({settings}), but /proc/net/igmp shows {querier}: "
                "they were read from another network namespace than the table, or changed meanwhile",
                "run the doctor again; inside a container, run it in the container's network namespace",
            )
        return Finding(Severity.OK, CHECK, subject, f"IGMPv2 is forced ({settings}{seen})")
    if version == 1:
        return Finding(
            Severity.PROBLEM,
            CHECK,
            subject,
            f"IGMPv1 is forced ({settings}{seen}), and the kernel prefers v1 to v2: the Transit Gateway "
            "speaks IGMPv2 only",
            force_v2_fix(interface),
        )
    # Inferred from the kernel's timers, not from AWS documentation: a host that hears the TGW's
    # v2 queries answers in v2 for a while (the querier-present timeout), so joins may still be
    # heard, late, at the next query (every 2 minutes); reports it sends unprompted stay v3.
    fallback = (
        " (V2 for now only because it heard a v2 query: its unprompted joins and leaves still go out "
        "as v3, so a join waits for the next query, up to 2 minutes, and a leave is not heard)"
        if querier == "V2"
        else ""
    )
    return Finding(
        Severity.PROBLEM,
        CHECK,
        subject,
        f"IGMPv3 is in effect ({settings}{seen}){fallback}: the Transit Gateway hears only IGMPv2 "
        "and ignores this host's v3 joins",
        force_v2_fix(interface),
    )
