"""jsii runs on the pinned Node: mcastkit.jsii_node, the app entry point, and cdk.json's launcher."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mcastkit import jsii_node
from mcastkit.errors import EnvironmentFailure
from mcastkit.exit import ExitStatus

ROOT = Path(__file__).resolve().parents[1]


def _fake_node(directory: Path, version: str) -> Path:
    node = directory / "node"
    node.write_text(f"#!/bin/sh\necho {version}\n")
    node.chmod(0o755)
    return node


def test_a_chosen_supported_node_is_kept(tmp_path: Path) -> None:
    node = _fake_node(tmp_path, "v22.11.0")
    env = {"JSII_NODE": str(node)}
    assert jsii_node.use_pinned_node(env) == str(node)
    assert env["JSII_NODE"] == str(node)


@pytest.mark.parametrize(
    ("version", "message"),
    [("v20.20.2", "is Node 20: the CDK's runtime (jsii) needs Node 22 or 24"), ("", "does not run")],
)
def test_an_unsupported_or_broken_node_is_named(tmp_path: Path, version: str, message: str) -> None:
    node = _fake_node(tmp_path, version)
    with pytest.raises(EnvironmentFailure) as raised:
        jsii_node.use_pinned_node({"JSII_NODE": str(node)})
    assert f"{node} {message}" in str(raised.value)
    assert "make setup" in str(raised.value)


def test_no_node_at_all(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(jsii_node, "PINNED_NODE", tmp_path / "missing")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EnvironmentFailure, match=r"Node\.js not found: the CDK's runtime"):
        jsii_node.use_pinned_node({})


@pytest.mark.skipif(not jsii_node.PINNED_NODE.exists(), reason="node_modules not installed (make setup)")
def test_the_pinned_node_is_preferred_over_the_path() -> None:
    env: dict[str, str] = {}
    assert jsii_node.use_pinned_node(env) == str(jsii_node.PINNED_NODE)
    assert jsii_node.node_major(env["JSII_NODE"]) in jsii_node.SUPPORTED_MAJORS


def test_app_py_names_an_old_node_in_one_line(tmp_path: Path) -> None:
    node = _fake_node(tmp_path, "v20.20.2")
    env = {**os.environ, "JSII_NODE": str(node), "CDK_OUTDIR": str(tmp_path / "out")}
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == ExitStatus.ENVIRONMENT
    assert result.stderr == (
        f"{node} is Node 20: the CDK's runtime (jsii) needs Node 22 or 24; run `make setup` in the "
        "repository (npm ci installs Node 22 in node_modules), or set JSII_NODE to a supported node\n"
    )


def test_cdk_json_runs_the_app_on_the_project_venv(tmp_path: Path) -> None:
    """`npx cdk synth` without an activated venv: cdk.json's launcher finds .venv itself, and
    without one says to run make setup (not ModuleNotFoundError: aws_cdk)."""
    assert json.loads((ROOT / "cdk.json").read_text())["app"] == "tools/cdk-app"
    bare = tmp_path / "checkout"
    (bare / "tools").mkdir(parents=True)
    shutil.copy2(ROOT / "tools" / "cdk-app", bare / "tools" / "cdk-app")
    result = subprocess.run(
        ["tools/cdk-app"], cwd=bare, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    missing = f"{bare}/.venv/bin/python not found"
    assert result.stderr == f"mcastkit: {missing}: run `make setup` first (it creates .venv with the CDK)\n"
