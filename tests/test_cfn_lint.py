"""cfn-lint over templates the example does not exercise: a static-sources domain, no customers.

`make test` lints the example's cdk.out; this covers the other shapes the stacks can take.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from mcastkit.config import Config, parse_config
from mcastkit.stacks import add_region_stacks

CFN_LINT = Path(sys.executable).with_name("cfn-lint")


@pytest.fixture(scope="module")
def assembly_dir(
    example_config: Config, cdk_context: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    data = example_config.model_dump(mode="json")
    london = data["regions"]["eu-west-2"]
    london["domains"][1].update(mode="static", static_sources=["eni-0123456789abcdef0"])
    london.pop("eks")  # the example's EKS stack is linted with it
    data["regions"] = {"eu-west-2": london}
    data["customers"] = []
    config = parse_config(data)
    outdir = tmp_path_factory.mktemp("static-cdk.out")
    app = cdk.App(context=cdk_context, outdir=str(outdir))
    add_region_stacks(app, config, "eu-west-2")
    app.synth()
    return outdir


@pytest.mark.skipif(not CFN_LINT.exists(), reason="cfn-lint is not installed next to this Python")
def test_static_domain_and_empty_sharing_templates_are_clean(assembly_dir: Path) -> None:
    templates = sorted(assembly_dir.glob("*.template.json"))
    assert len(templates) == 3
    network = (assembly_dir / "venue-md-eu-west-2-network.template.json").read_text()
    assert "AWS::EC2::TransitGatewayMulticastGroupSource" in network
    # The command line, as `make test` runs it (it knows CDK templates, e.g. pinned zones).
    result = subprocess.run(
        [str(CFN_LINT), "--non-zero-exit-code", "informational", "--", *map(str, templates)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
