"""The templates a plan compares: synthesized from a config in-process (no credentials, no
lookups, the feature flags of ``cdk.json``), or read from a recorded ``cdk.out``."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mcastkit.config import Config
from mcastkit.errors import BadInput, EnvironmentFailure
from mcastkit.jsii_node import use_pinned_node

REPO_ROOT = Path(__file__).resolve().parents[2]
Templates = dict[str, dict[str, Any]]


def _context() -> dict[str, Any]:
    """The feature flags ``cdk synth`` uses, and the construct paths that name each resource."""
    cdk_json = REPO_ROOT / "cdk.json"
    try:
        context = json.loads(cdk_json.read_text(encoding="utf-8"))["context"]
    except (OSError, ValueError, KeyError) as err:
        raise EnvironmentFailure(f"{cdk_json}: cannot read the CDK feature flags ({err})") from None
    flags = {k: v for k, v in context.items() if k != "config"}
    return {**flags, "aws:cdk:enable-path-metadata": True}


@contextmanager
def quiet_synth() -> Iterator[None]:
    """Keep the CDK's own output (the Node.js runtime's notices, template validation warnings)
    off the terminal while a plan synthesizes; shown only if the synth fails."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except Exception as err:
            sink.seek(0)
            said = sink.read().decode(errors="replace").strip().splitlines()[-5:]
            raise EnvironmentFailure(
                f"the CDK could not synthesize the stacks ({err}): {' | '.join(said)}"
            ) from err
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def provider_templates(config: Config) -> Templates:
    """Every provider stack of ``config``, by stack name."""
    use_pinned_node()
    with quiet_synth():
        import aws_cdk as cdk

        from mcastkit.stacks import add_region_stacks

        with tempfile.TemporaryDirectory(prefix="mcastkit-plan-") as outdir:
            app = cdk.App(outdir=outdir, context=_context())
            for region in config.regions:
                add_region_stacks(app, config, region)
            assembly = app.synth()
            return {stack.stack_name: dict(stack.template) for stack in assembly.stacks}


def kit_templates(config: Config, customer: str, region: str) -> Templates:
    """The customer's stack in ``region`` (empty when it is not entitled there)."""
    from mcastkit.config.names import kit_stack_name
    from mcastkit.onboard.kit import synth_template

    try:
        entitled = config.customer(customer)
    except KeyError:
        raise BadInput(f"--customer {customer}: not a customer of this config") from None
    if not entitled.domains_in(region):
        return {}
    with quiet_synth():
        template = synth_template(config, entitled, region)
    return {kit_stack_name(config.project, customer, region): template}


def recorded_templates(directory: Path) -> Templates:
    """The ``*.template.json`` files of a cloud assembly directory, by stack name."""
    files = sorted(directory.glob("*.template.json"))
    if not files:
        raise BadInput(f"{directory}: no *.template.json here (a cdk.out directory, or a config file)")
    templates: Templates = {}
    for path in files:
        try:
            templates[path.name.removesuffix(".template.json")] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise BadInput(f"{path}: not a readable template ({err})") from None
    return templates
