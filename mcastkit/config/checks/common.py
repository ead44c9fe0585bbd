"""Checks several parts of the config share."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from ipaddress import IPv4Network

from mcastkit.config.models import Domain
from mcastkit.config.names import pascal
from mcastkit.config.problems import Path, Problem, path_text


def repeats(keys: Iterable[Hashable]) -> list[tuple[int, int]]:
    """(index, index of the first one) for every key that already appeared earlier."""
    first: dict[Hashable, int] = {}
    found = []
    for i, key in enumerate(keys):
        j = first.setdefault(key, i)
        if j != i:
            found.append((i, j))
    return found


def names_problems(path: Path, names: list[str], what: str) -> list[Problem]:
    """Names used twice, and names that differ only by hyphens: both become the same
    CloudFormation id and export name (``md-1`` and ``md1`` are both ``Md1``)."""
    repeated = {i for i, _ in repeats(names)}
    problems = [
        Problem((*path, i, "name"), f"{what} name {names[i]!r} is used twice") for i in sorted(repeated)
    ]
    by_id: dict[str, str] = {}
    for i, name in enumerate(names):
        if i in repeated:
            continue
        other = by_id.setdefault(pascal(name), name)
        if other != name:
            problems.append(
                Problem(
                    (*path, i, "name"),
                    f"{what} names {other!r} and {name!r} differ only by hyphens; both become the "
                    f"CloudFormation id {pascal(name)}",
                    fix="rename one",
                )
            )
    return problems


def overlaps(items: Iterable[tuple[Path, IPv4Network]]) -> list[Problem]:
    """A problem per pair of overlapping networks, at the later one."""
    seen: list[tuple[Path, IPv4Network]] = []
    problems = []
    for path, network in items:
        for other_path, other in seen:
            if network.overlaps(other):
                problems.append(
                    Problem(path, f"{network} overlaps {path_text(other_path)} {other}"),
                )
        seen.append((path, network))
    return problems


def probe_group_problems(domain: Domain, name: str) -> list[Problem]:
    """A probe's ``group`` (path relative to the probe section): a group of its domain declared
    ``probe: true``. A probe sender publishes synthetic datagrams; on a feed group, customers' feed
    handlers would receive them."""
    groups = {g.name: g for g in domain.groups}
    if name not in groups:
        return [
            Problem(("group",), f"{name!r} is not a group of domain {domain.name!r} ({', '.join(groups)})")
        ]
    if not groups[name].probe:
        return [
            Problem(
                ("group",),
                f"{name!r} is a feed group: the probe's sender would publish synthetic datagrams into it, "
                "which customers' feed handlers receive",
                fix="add a group with probe: true to the domain for the probe, and name it here",
            )
        ]
    return []
