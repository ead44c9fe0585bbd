"""Thin wrappers over iproute2 and processes inside named network namespaces."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import IO, Any

from mcastkit.errors import EnvironmentFailure


class LabError(EnvironmentFailure):
    """The lab cannot do what was asked; the message says why and what to do.

    The machine is what stops the lab (no root, no iproute2, a namespace or process that failed),
    so it is an :class:`EnvironmentFailure`: ``mcastkit lab`` exits 3 with the message.
    """


def check_environment() -> None:
    """Root and iproute2 are the lab's only requirements."""
    if os.geteuid() != 0:
        raise LabError("the lab creates network namespaces: run it as root")
    for tool in ("ip", "bridge"):
        if shutil.which(tool) is None:
            raise LabError(f"`{tool}` not found: install iproute2")


def ip(*args: str, namespace: str | None = None, check: bool = True) -> str:
    """Run ``ip [-n NS] ARGS``; a failure raises :class:`LabError` with iproute2's message."""
    command = ["ip", *(["-n", namespace] if namespace else []), *args]
    return _run(command, check=check)


def bridge_json(*args: str, namespace: str) -> Any:
    output = _run(["bridge", "-n", namespace, "-j", *args])
    return json.loads(output) if output.strip() else []


def in_namespace(
    namespace: str,
    command: Sequence[str],
    *,
    check: bool = True,
    timeout: float = 30,
    cpus: Collection[int] | None = None,
) -> str:
    """Run ``command`` in ``namespace`` (on ``cpus`` only, when given) and return its output."""
    return _run(["ip", "netns", "exec", namespace, *command], check=check, timeout=timeout, cpus=cpus)


def _run(
    command: Sequence[str], *, check: bool = True, timeout: float = 30, cpus: Collection[int] | None = None
) -> str:
    try:
        completed = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            preexec_fn=_pinned_to(cpus),
        )
    except subprocess.TimeoutExpired:
        raise LabError(f"`{' '.join(command)}` did not finish in {timeout:.0f} s") from None
    if check and completed.returncode != 0:
        message = (completed.stderr or completed.stdout).strip()
        raise LabError(f"`{' '.join(command)}` failed: {message}")
    return completed.stdout


def namespaces() -> list[str]:
    output = ip("netns", "list", check=False)
    return [line.split()[0] for line in output.splitlines() if line.strip()]


def mcastkit_command(*args: str) -> list[str]:
    """The ``mcastkit`` command line as this interpreter runs it (no dependence on PATH)."""
    return [sys.executable, "-m", "mcastkit", *args]


def spawn(
    namespace: str,
    command: Sequence[str],
    *,
    log: Path,
    env: dict[str, str] | None = None,
    cpus: Collection[int] | None = None,
) -> int:
    """Start ``command`` in ``namespace`` in its own session, output to ``log``; return its pid.

    ``ip netns exec`` replaces itself with the command, so the pid is the command's own; with
    ``cpus`` it runs on those CPUs only (its children too).
    """
    handle: IO[bytes]
    with log.open("ab") as handle:
        process = subprocess.Popen(
            ["ip", "netns", "exec", namespace, *command],
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **(env or {})},
            preexec_fn=_pinned_to(cpus),
        )
    return process.pid


def _pinned_to(cpus: Collection[int] | None) -> Callable[[], None] | None:
    """What a child runs before ``exec`` to keep to ``cpus`` (inherited across ``exec``); None: any CPU."""
    if not cpus:
        return None
    chosen, allowed = set(cpus), os.sched_getaffinity(0)
    if not chosen <= allowed:
        raise LabError(
            f"CPU {','.join(map(str, sorted(chosen - allowed)))} is not one this process may use "
            f"({','.join(map(str, sorted(allowed)))}): `lab down` and `lab up` again to plan with these"
        )
    return lambda: os.sched_setaffinity(0, chosen)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    state = Path(f"/proc/{pid}/stat")
    try:
        # A zombie (our own finished child not yet reaped) is not alive.
        return state.read_text().split(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def reap() -> None:
    """Collect finished children so they do not linger as zombies."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def wait_exit(pids: Sequence[int], seconds: float) -> None:
    """Wait up to ``seconds`` for every process in ``pids`` to end (reaping our own children)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        reap()
        time.sleep(0.05)


def stop(pids: Sequence[int], *, grace: float = 3.0) -> None:
    """SIGTERM, then SIGKILL whatever still runs after ``grace`` seconds."""
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    wait_exit(pids, grace)
    for pid in pids:
        if alive(pid):
            _signal(pid, signal.SIGKILL)
    reap()


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def pids_in(namespace: str) -> list[int]:
    output = ip("netns", "pids", namespace, check=False)
    return [int(line) for line in output.split() if line.isdigit()]
