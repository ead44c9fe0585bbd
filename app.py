#!/usr/bin/env python3
"""CDK entry point: the only place that reads context and the environment."""

import sys

import aws_cdk as cdk

from mcastkit.config import ConfigError, load_config
from mcastkit.exit import ExitStatus
from mcastkit.stacks import add_region_stacks

app = cdk.App()
config_path = app.node.try_get_context("config") or "config/example.yaml"
try:
    config = load_config(config_path)
except ConfigError as err:
    print(err.render(), file=sys.stderr)
    sys.exit(ExitStatus.BAD_INPUT)

for region in config.regions:
    add_region_stacks(app, config, region)

app.synth()
