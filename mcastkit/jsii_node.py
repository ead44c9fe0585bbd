"""The Node.js that jsii (the runtime of the CDK's Python bindings) runs on.

jsii starts ``node`` from PATH unless ``JSII_NODE`` names one: with a virtualenv activated that is
the machine's Node, often too old (Node 20 prints an end-of-life banner, as Python bytes, and will
stop working). :func:`use_pinned_node` points jsii at the project's pinned Node 22 (``npm ci``
installs it in ``node_modules``) before anything imports ``aws_cdk``, and names a missing or
unsupported Node as such. Standard library only: it runs before the CDK is imported.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import MutableMapping
from pathlib import Path

from mcastkit.errors import EnvironmentFailure

REPO_ROOT = Path(__file__).resolve().parent.parent
PINNED_NODE = REPO_ROOT / "node_modules" / ".bin" / "node"
#: The Node releases the pinned jsii supports (its banner lists ^22 and ^24).
SUPPORTED_MAJORS = (22, 24)
SETUP = "run `make setup` in the repository (npm ci installs Node 22 in node_modules)"


def node_major(node: str) -> int | None:
    """The major version ``node --version`` reports, or None when it does not run."""
    try:
        version = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout.strip()
    except OSError:
        return None
    head = version.removeprefix("v").split(".")[0]
    return int(head) if head.isdigit() else None


def use_pinned_node(environ: MutableMapping[str, str] | None = None) -> str:
    """Set ``JSII_NODE`` to the Node jsii must use and return it: ``JSII_NODE`` if set, else the
    pinned one, else ``node`` on PATH; an :class:`EnvironmentFailure` when none runs or it is not a
    supported release."""
    env = os.environ if environ is None else environ
    node = env.get("JSII_NODE") or (str(PINNED_NODE) if PINNED_NODE.exists() else shutil.which("node"))
    if not node:
        raise EnvironmentFailure(f"Node.js not found: the CDK's runtime (jsii) needs Node 22; {SETUP}")
    major = node_major(node)
    if major is None:
        raise EnvironmentFailure(f"{node} does not run (`{node} --version` failed); {SETUP}")
    if major not in SUPPORTED_MAJORS:
        wanted = " or ".join(str(m) for m in SUPPORTED_MAJORS)
        raise EnvironmentFailure(
            f"{node} is Node {major}: the CDK's runtime (jsii) needs Node {wanted}; {SETUP}, or set "
            "JSII_NODE to a supported node"
        )
    env["JSII_NODE"] = node
    return node
