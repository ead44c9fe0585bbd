"""Shared fixtures: the example config (parsed and as raw data) and a synthesized example app."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from mcastkit.config import Config, load_config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = ROOT / "config" / "example.yaml"


@pytest.fixture(scope="session")
def example_config() -> Config:
    """The parsed config/example.yaml (frozen: safe to share)."""
    return load_config(EXAMPLE_CONFIG)


@pytest.fixture
def example_data() -> dict[str, Any]:
    """config/example.yaml as plain data, a fresh copy per test: mutate it freely."""
    return copy.deepcopy(_example_data())


def _example_data() -> dict[str, Any]:
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[dict[str, Any]], Path]:
    """Write config data to a YAML file in tmp_path and return its path."""

    def write(data: dict[str, Any], name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def cdk_context() -> dict[str, Any]:
    """The feature flags of cdk.json, so in-process apps synthesize like `cdk synth`.

    Also the path metadata the CLI turns on (``aws:cdk:path``), by which cfn-lint knows a CDK template.
    """
    context = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    assert isinstance(context, dict)
    return {**{k: v for k, v in context.items() if k != "config"}, "aws:cdk:enable-path-metadata": True}


@pytest.fixture(scope="session")
def example_app(
    example_config: Config, cdk_context: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> SimpleNamespace:
    """Every region's stacks of the example config in one App, synthesized once per session.

    Attributes: ``app``, ``stacks`` (region -> RegionStacks), ``assembly`` (the CloudAssembly).
    """
    import aws_cdk as cdk

    from mcastkit.stacks import add_region_stacks

    app = cdk.App(context=cdk_context, outdir=str(tmp_path_factory.mktemp("example-cdk.out")))
    stacks = {region: add_region_stacks(app, example_config, region) for region in example_config.regions}
    return SimpleNamespace(app=app, stacks=stacks, assembly=app.synth())
