"""Every check ``mcastkit doctor`` runs, as a function: :func:`diagnose` returns the findings,
:func:`run_checks` yields them one by one (the command prints each as it comes, and keeps what it
has when a later check fails)."""

from __future__ import annotations

from collections.abc import Iterator

from mcastkit.doctor.aws.checks import AwsFactory, aws_findings
from mcastkit.doctor.findings import Finding, Severity
from mcastkit.doctor.host import Host
from mcastkit.doctor.local import local_findings, select_interface
from mcastkit.doctor.namespaces import CHECK as CHECK_NETNS
from mcastkit.doctor.namespaces import namespace_findings
from mcastkit.doctor.options import DoctorOptions
from mcastkit.errors import BadInput, EnvironmentFailure
from mcastkit.onboard.aws import Aws


def _clients(region: str) -> Aws:
    return Aws(region=region)


def run_checks(
    options: DoctorOptions, *, host: Host | None = None, make_aws: AwsFactory | None = None
) -> Iterator[Finding]:
    """The findings of the checks ``options`` asks for, in order.

    Raises a :class:`~mcastkit.errors.McastkitError` for what stops the checks: a bad option
    (:class:`BadInput`), no root for ``--netns`` or ``--listen``, an AWS call refused.
    """
    host = host or Host()
    if options.namespaces or options.all_namespaces:
        yield from _in_namespaces(options, host)
        return
    interface, why = select_interface(options, host.proc)
    yield from local_findings(options, host, interface, why)
    if options.aws:
        yield from aws_findings(options, host.proc, interface, make_aws or _clients)


def diagnose(
    options: DoctorOptions, *, host: Host | None = None, make_aws: AwsFactory | None = None
) -> list[Finding]:
    """Every finding for ``options`` (see :func:`run_checks`)."""
    return list(run_checks(options, host=host, make_aws=make_aws))


def _in_namespaces(options: DoctorOptions, host: Host) -> Iterator[Finding]:
    flag = "--all-netns" if options.all_namespaces else f"--netns {options.namespaces[0]}"
    if not host.privileged():
        raise EnvironmentFailure(
            f"{flag}: entering a network namespace needs root; run as root, or run the doctor inside it "
            "yourself: ip netns exec NAME mcastkit doctor ..."
        )
    available = host.proc.namespaces()
    names = available if options.all_namespaces else list(options.namespaces)
    missing = [name for name in names if name not in available]
    if missing:
        listed = ", ".join(available) or "none"
        raise BadInput(f"--netns {missing[0]}: no such network namespace (ip netns list: {listed})")
    if not names:
        yield Finding(
            Severity.WARN,
            CHECK_NETNS,
            "--all-netns",
            "no named network namespace (ip netns list is empty): nothing was checked",
            "run the doctor without --all-netns to check this namespace; for a container, nsenter -t PID -n "
            "mcastkit doctor ...",
        )
        return
    yield from namespace_findings(names, options.arguments(), listen=options.listen, run=host.run)
