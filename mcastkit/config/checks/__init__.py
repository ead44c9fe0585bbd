"""Checks across fields, run once every field is valid: each returns structured problems.

Every rule exists because of an AWS fact (see :mod:`mcastkit.config.facts` and the README's
config reference). A problem that follows from another one (a region refused, a domain that
cannot have a subnet) is reported once, at its root. One module per part of the config:
:mod:`.region`, :mod:`.capacity`, :mod:`.relay`, :mod:`.stream`, :mod:`.customers`,
:mod:`.overlay`; :mod:`.common` holds what they share.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from mcastkit.config.checks.capacity import capacity_problems
from mcastkit.config.checks.common import overlaps
from mcastkit.config.checks.customers import customer_problems
from mcastkit.config.checks.overlay import overlay_config_problems, overlays_problems
from mcastkit.config.checks.region import region_problems
from mcastkit.config.checks.relay import secret_problems
from mcastkit.config.checks.stream import stream_access_problems
from mcastkit.config.models import Config
from mcastkit.config.names import STACK_NAME
from mcastkit.config.problems import Path, Problem

__all__ = ["capacity_problems", "config_problems", "overlays_problems"]


def config_problems(config: Config) -> list[Problem]:
    """Every problem across the fields of ``config``, in file order."""
    problems = _project_problems(config)
    refused: set[str] = set()
    for name, region in config.regions.items():
        path: Path = ("regions", name)
        if name not in config.allowed_regions:
            refused.add(name)
            problems.append(_unknown_region(path, name, config.allowed_regions))
            continue
        problems += [p.within(path) for p in region_problems(config, name, region)]
    problems += overlaps(
        (("regions", name, "vpc_cidr"), region.vpc_cidr) for name, region in config.regions.items()
    )
    problems += secret_problems(config, refused)
    problems += customer_problems(config, refused_regions=refused)
    problems += stream_access_problems(config, refused)
    problems += overlays_problems(("overlays",), config.overlays)
    problems += overlay_config_problems(config)
    return problems


def _unknown_region(path: Path, name: str, allowed: Sequence[str]) -> Problem:
    close = difflib.get_close_matches(name, allowed, n=1)
    fix = (
        f"did you mean {close[0]}?" if close else "add it to allowed_regions if AWS supports multicast there"
    )
    return Problem(path, f"region {name!r} is not in allowed_regions", fix=fix)


def _project_problems(config: Config) -> list[Problem]:
    if STACK_NAME.fullmatch(config.project):
        return []
    return [
        Problem(
            ("project",),
            f"{config.project!r} starts with a digit; it begins every stack name, and CloudFormation "
            "stack names start with a letter",
            fix="start the project name with a letter",
        )
    ]
