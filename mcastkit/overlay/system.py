"""The commands an overlay runs on its host (iproute2, iptables, WireGuard), one way, with one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from mcastkit.errors import EnvironmentFailure


class System:
    """Runs ``ip``, ``bridge``, ``iptables`` and ``wg``, and reads ``/proc/sys`` of the current
    network namespace.

    A failed command raises :class:`EnvironmentFailure` with the command and what it printed.
    """

    def __init__(self, proc_sys: Path = Path("/proc/sys")) -> None:
        self.proc_sys = proc_sys

    def require(self, *tools: str) -> None:
        if os.geteuid() != 0:
            raise EnvironmentFailure("an overlay changes this host's interfaces and routes: run it as root")
        for tool in tools:
            if shutil.which(tool) is None:
                package = {"iptables": "iptables", "wg": "wireguard-tools"}.get(tool, "iproute2")
                raise EnvironmentFailure(f"`{tool}` not found: install {package}")

    def run(
        self, *command: str, check: bool = True, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> str:
        try:
            done = subprocess.run(
                command, input=stdin, capture_output=True, text=True, timeout=30, check=False, env=env
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise EnvironmentFailure(f"`{' '.join(command)}`: {err}") from None
        if check and done.returncode != 0:
            message = (done.stderr or done.stdout).strip().splitlines()
            raise EnvironmentFailure(
                f"`{' '.join(command)}` failed: {message[0] if message else done.returncode}"
            )
        return done.stdout

    def returncode(self, *command: str) -> int:
        """The exit status of ``command`` (its output discarded): for commands that answer by it."""
        try:
            return subprocess.run(command, capture_output=True, timeout=30, check=False).returncode
        except (OSError, subprocess.TimeoutExpired) as err:
            raise EnvironmentFailure(f"`{' '.join(command)}`: {err}") from None

    def json(self, *command: str) -> Any:
        """``command`` (an iproute2 one with ``-j``) as parsed JSON; nothing printed is ``[]``."""
        text = self.run(*command).strip()
        return json.loads(text) if text else []

    def sysctl(self, key: str) -> str | None:
        try:
            return (self.proc_sys / key.replace(".", "/")).read_text().strip()
        except OSError:
            return None

    def set_sysctl(self, key: str, value: str, *, missing_ok: bool = False) -> None:
        path = self.proc_sys / key.replace(".", "/")
        if missing_ok and not path.exists():
            return
        try:
            path.write_text(value)
        except OSError as err:
            raise EnvironmentFailure(f"sysctl {key}={value}: {err.strerror}") from None

    @staticmethod
    def has(tool: str) -> bool:
        return shutil.which(tool) is not None
