"""Check 7 (``--netns NAME``, ``--all-netns``): the same checks inside named network namespaces.

Each namespace has its own interfaces, sysctls, routes and memberships, so the checks run in it:
``ip netns exec NAME <python> -m mcastkit doctor ... --json`` (root), read back as a
:class:`~mcastkit.doctor.findings.Diagnosis`, each subject prefixed ``netns NAME:``. The
namespaces run side by side, so ``--listen`` costs its seconds once.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from mcastkit.doctor.findings import Diagnosis, DiagnosisError, Finding, Severity
from mcastkit.errors import EnvironmentFailure

CHECK = "netns"
#: Seconds a namespace's checks may take beyond --listen (the AWS checks make a few calls).
_SLACK_SECONDS = 120.0
_PARALLEL = 8

Runner = Callable[[Sequence[str], float], "subprocess.CompletedProcess[str]"]


def run_command(argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)


def doctor_in(namespace: str, arguments: Sequence[str]) -> list[str]:
    """The command that runs ``mcastkit doctor`` with ``arguments`` inside ``namespace``."""
    return [
        "ip",
        "netns",
        "exec",
        namespace,
        sys.executable,
        "-m",
        "mcastkit",
        "doctor",
        *arguments,
        "--json",
    ]


def namespace_findings(
    names: Sequence[str], arguments: Sequence[str], *, listen: float, run: Runner = run_command
) -> list[Finding]:
    """The findings of each namespace in ``names``, in that order."""
    if not names:
        return []
    with ThreadPoolExecutor(max_workers=min(_PARALLEL, len(names))) as pool:
        found = list(
            pool.map(lambda name: _in_namespace(name, arguments, listen + _SLACK_SECONDS, run), names)
        )
    return [finding for findings in found for finding in findings]


def _in_namespace(name: str, arguments: Sequence[str], timeout: float, run: Runner) -> list[Finding]:
    command = doctor_in(name, arguments)
    by_hand = f"ip netns exec {name} mcastkit doctor {' '.join(arguments)}".rstrip()
    try:
        completed = run(command, timeout)
    except FileNotFoundError:
        raise EnvironmentFailure("--netns: 'ip' (iproute2) is not installed; install it") from None
    except subprocess.TimeoutExpired:
        return [
            Finding(
                Severity.PROBLEM,
                CHECK,
                f"netns {name}",
                f"the checks did not finish in {timeout:g} s",
                f"run them there by hand to see where they stop: {by_hand}",
            )
        ]
    try:
        diagnosis = Diagnosis.from_json(completed.stdout.strip())
    except DiagnosisError:
        said = [line for line in completed.stderr.splitlines() if line.strip()]
        why = said[-1].strip() if said else f"exit status {completed.returncode}, no report"
        return [
            Finding(
                Severity.PROBLEM,
                CHECK,
                f"netns {name}",
                f"the checks could not run there: {why}",
                f"run them there by hand: {by_hand}",
            )
        ]
    findings = [finding.within(name) for finding in diagnosis.findings]
    if diagnosis.error is not None:
        findings.append(
            Finding(
                Severity.PROBLEM,
                CHECK,
                f"netns {name}",
                f"the checks stopped early: {diagnosis.error}",
                f"fix that, or run them there by hand: {by_hand}",
            )
        )
    return findings
