"""The import graph: the config package at the bottom, the data plane free of the CDK and boto3,
and no import cycles anywhere in the package."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mcastkit"

#: What the config package may import from mcastkit: itself and the leaves below it.
CONFIG_MAY_IMPORT = (
    "mcastkit.config",
    "mcastkit.net.addresses",
    "mcastkit.errors",
    "mcastkit.exit",
    "mcastkit.stream.fsync",
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every mcastkit module ``path`` imports, at any depth of the file (lazy imports count)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("mcastkit")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mcastkit"):
            found.add(node.module)
            # ``from mcastkit.config import models`` imports the submodule.
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, if any (a package importing its own submodules through ``__init__`` is
    not a cycle: Python loads the package first)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if node.startswith(f"{target}."):
                continue  # a submodule importing its own package's __init__
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_package_has_no_import_cycle() -> None:
    assert _cycle(_graph()) is None, " -> ".join(_cycle(_graph()) or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"p": {"p.x"}, "p.x": {"p"}}) is None


def test_the_config_package_is_at_the_bottom() -> None:
    graph = _graph()
    config_modules = [m for m in graph if m == "mcastkit.config" or m.startswith("mcastkit.config.")]
    assert len(config_modules) >= 6
    for module in config_modules:
        above = sorted(m for m in graph[module] if not m.startswith(CONFIG_MAY_IMPORT))
        assert above == [], f"{module} imports {above}"
    # ...and the old module is gone.
    assert not (PACKAGE / "config.py").exists()
    assert not (PACKAGE / "rules.py").exists()


def test_the_data_plane_the_config_and_the_eks_manifests_load_no_cdk_and_no_boto3() -> None:
    heavy = {"aws_cdk", "boto3", "botocore", "jsii", "constructs"}
    script = (
        "import json, sys\n"
        "import mcastkit.relay, mcastkit.probe, mcastkit.config, mcastkit.lab\n"
        "import mcastkit.eks.network, mcastkit.eks.manifests\n"
        "from mcastkit.config import load_config\n"
        "load_config('config/example.yaml')\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(result.stdout) == []
