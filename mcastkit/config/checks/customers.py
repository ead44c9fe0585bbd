"""Checks of the customers: who they are, what they are entitled to, and their stack names."""

from __future__ import annotations

from collections.abc import Iterable

from mcastkit.config.checks.common import repeats
from mcastkit.config.models import Config, Customer
from mcastkit.config.names import STACK_NAME_MAX, kit_stack_name
from mcastkit.config.problems import Path, Problem


def customer_problems(config: Config, *, refused_regions: Iterable[str] = ()) -> list[Problem]:
    """Problems of the customers; entitlements to a region refused above are not reported again."""
    refused = set(refused_regions)
    customers = config.customers
    problems = [
        Problem(("customers", i, "name"), f"customer name {customers[i].name!r} is used twice")
        for i, _ in repeats(c.name for c in customers)
    ]
    problems += [
        Problem(
            ("customers", i, "principal"),
            f"{customers[i].principal} is already customers[{j}] ({customers[j].name})",
        )
        for i, j in repeats(c.principal for c in customers)
    ]
    for i, customer in enumerate(customers):
        path: Path = ("customers", i)
        problems += _principal_problems(config, path, customer)
        problems += _entitlement_problems(config, path, customer, refused)
        problems += _kit_name_problems(config, path, customer)
    for region_name, region in config.regions.items():
        for i, domain in enumerate(region.domains):
            count = len(config.customers_of(region_name, domain.name))
            # The quota leaves one member per group for the provider; registered static members
            # are the provider's too, and each takes a place.
            room = config.quotas.customers_per_domain + 1 - max(1, len(domain.static_members))
            if count > room:
                mine = f", less {len(domain.static_members)} static_members" if domain.static_members else ""
                problems.append(
                    Problem(
                        ("regions", region_name, "domains", i),
                        f"{count} customers of domain {domain.name!r} exceed quotas.customers_per_domain "
                        f"({config.quotas.customers_per_domain}{mine}): members per group are capped at 100",
                    )
                )
    return problems


def _principal_problems(config: Config, path: Path, customer: Customer) -> list[Problem]:
    where: Path = (*path, "principal")
    if customer.principal == config.provider_account:
        return [Problem(where, f"{customer.principal} is the provider account")]
    org = customer.organization_id
    if org is None:
        return []
    if config.organization_id is None:
        return [
            Problem(
                ("organization_id",),
                f"required: customer {customer.name!r} is an OU of {org}, and RAM shares with an OU only "
                "inside the provider's own organization",
                fix=f"set organization_id: {org}",
            )
        ]
    if org != config.organization_id:
        return [
            Problem(
                where,
                f"OU of {org} is not in the provider's organization {config.organization_id}: RAM shares "
                "with an OU only inside the owner's organization",
                fix="name the customer's account ids instead",
            )
        ]
    return []


def _entitlement_problems(config: Config, path: Path, customer: Customer, refused: set[str]) -> list[Problem]:
    entitlements = customer.entitlements
    problems = [
        Problem(
            (*path, "entitlements", j, "region"),
            f"{entitlements[j].region} is already entitlements[{k}] of customer {customer.name!r}",
            fix="list every domain of a region in one entitlement",
        )
        for j, k in repeats(e.region for e in entitlements)
    ]
    for j, entitlement in enumerate(entitlements):
        where: Path = (*path, "entitlements", j)
        region = config.regions.get(entitlement.region)
        if region is None:
            if not refused:  # a refused region key explains this already
                problems.append(
                    Problem(
                        (*where, "region"),
                        f"{entitlement.region!r} is not a region of this config "
                        f"({', '.join(config.regions)})",
                    )
                )
            continue
        known = [d.name for d in region.domains]
        for m, wanted in enumerate(entitlement.domains):
            if wanted not in known:
                problems.append(
                    Problem(
                        (*where, "domains", m),
                        f"{wanted!r} is not a domain of {entitlement.region} ({', '.join(known)})",
                    )
                )
            elif wanted in entitlement.domains[:m]:
                problems.append(Problem((*where, "domains", m), f"{wanted!r} is listed twice"))
    return problems


def _kit_name_problems(config: Config, path: Path, customer: Customer) -> list[Problem]:
    for entitlement in customer.entitlements:
        name = kit_stack_name(config.project, customer.name, entitlement.region)
        if len(name) > STACK_NAME_MAX:
            return [
                Problem(
                    (*path, "name"),
                    f"the customer's stack name {name} has {len(name)} characters, over CloudFormation's "
                    f"{STACK_NAME_MAX}",
                    fix=f"shorten the customer name or the project by {len(name) - STACK_NAME_MAX}",
                )
            ]
    return []
