"""``mcastkit validate``: check a config file the way ``cdk synth`` will read it."""

from __future__ import annotations

import argparse
from typing import Any

from mcastkit.config import load_config
from mcastkit.console import Console
from mcastkit.exit import ExitStatus


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("validate", help="validate a config file")
    parser.add_argument("config", help="path to the YAML config")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, console: Console) -> ExitStatus:
    config = load_config(args.config)  # a ConfigError reaches cli.main: exit 2, one line a problem
    domains = sum(len(r.domains) for r in config.regions.values())
    print(
        f"{args.config}: valid: project {config.project}, {len(config.regions)} region(s) "
        f"({', '.join(config.regions)}), {domains} domain(s), {len(config.customers)} customer(s)",
        file=console.out,
    )
    return ExitStatus.OK
