#!/usr/bin/env python3
"""CDK entry point: the only place that reads context and the environment."""

import sys
from pathlib import Path

import aws_cdk as cdk

from mcastkit.config import ConfigError, load_config
from mcastkit.eks.manifests import write_manifests
from mcastkit.exit import ExitStatus
from mcastkit.stacks import add_region_stacks

app = cdk.App()
config_path = app.node.try_get_context("config") or "config/example.yaml"
try:
    config = load_config(config_path)
except ConfigError as err:
    print(err.render(), file=sys.stderr)
    sys.exit(ExitStatus.BAD_INPUT)

stacks = [add_region_stacks(app, config, region) for region in config.regions]
assembly = app.synth()
# The Kubernetes side of each EKS stack, for `kubectl apply` (see the README's EKS section).
for region_stacks in stacks:
    if (eks := region_stacks.eks) is not None:
        write_manifests(Path(assembly.directory) / "eks" / eks.region, eks.manifests)
