"""Checks of the relay: its domain, its path to the datacenter, and one secret for every region."""

from __future__ import annotations

from ipaddress import IPv4Address

from mcastkit.config.models import Config, Region
from mcastkit.config.problems import Path, Problem


def relay_problems(config: Config, region: Region) -> list[Problem]:
    relay = region.relay
    if relay is None:
        return []
    problems = []
    domain_names = [d.name for d in region.domains]
    if relay.domain not in domain_names:
        problems.append(
            Problem(
                ("relay", "domain"),
                f"{relay.domain!r} is not a domain of this region ({', '.join(domain_names)})",
            )
        )
    for i, network in enumerate(relay.datacenter_cidrs):
        for name, other in config.regions.items():
            if network.overlaps(other.vpc_cidr):
                problems.append(
                    Problem(
                        ("relay", "datacenter_cidrs", i),
                        f"{network} overlaps regions.{name}.vpc_cidr {other.vpc_cidr}: a datacenter range "
                        "inside a VPC cannot be routed to the datacenter",
                        fix="list the datacenter's own ranges",
                    )
                )
    problems += _relay_path_problems(config, region)
    for i, endpoint in enumerate(relay.connect):
        if not any(IPv4Address(endpoint.host) in net for net in relay.datacenter_cidrs):
            problems.append(
                Problem(
                    ("relay", "connect", i),
                    f"{endpoint} is not inside datacenter_cidrs "
                    f"{', '.join(str(n) for n in relay.datacenter_cidrs)}",
                )
            )
    return problems


def _relay_path_problems(config: Config, region: Region) -> list[Problem]:
    """The egress must be able to reach the ingress: it dials (a listening task's address changes
    at every deployment and nothing gives it a stable one), and its subnets need a route."""
    relay = region.relay
    assert relay is not None
    problems = []
    if not relay.connect:
        problems.append(
            Problem(
                ("relay", "connect"),
                "required: without it the egress listens on a task interface whose address changes at "
                "every deployment, and mcastkit gives it no load balancer or name the datacenter could dial",
                fix="list the datacenter ingress relays the egress dials (IPV4:PORT)",
            )
        )
    multicast = region.shared.transit_gateway_id if region.shared else None
    if relay.route_via is None:
        problems.append(
            Problem(
                ("relay", "route_via"),
                "required: the relay's subnets have no route to datacenter_cidrs (no NAT, and the multicast "
                "transit gateway carries no unicast)",
                fix="name the virtual private gateway (vgw-..., mcastkit attaches it to the VPC) or the "
                "transit gateway (tgw-..., mcastkit attaches the VPC to it) of your Direct Connect or VPN",
            )
        )
    elif relay.route_via == multicast:
        problems.append(
            Problem(
                ("relay", "route_via"),
                f"{relay.route_via} is the multicast transit gateway, whose route tables are off",
                fix="name the gateway of your Direct Connect or VPN",
            )
        )
    return problems


def secret_problems(config: Config, refused: set[str]) -> list[Problem]:
    """The relay reads its secret through the region's Secrets Manager endpoint, and one datacenter
    ingress serves every region with one secret: so each region names a replica of one secret."""
    problems = []
    first: tuple[str, str] | None = None
    for name, region in config.regions.items():
        relay = region.relay
        if relay is None or name in refused:
            continue
        path: Path = ("regions", name, "relay", "secret_arn")
        if relay.secret_arn is None:
            if len([r for r in config.regions.values() if r.relay]) > 1:
                problems.append(
                    Problem(
                        path,
                        "required with relays in several regions: each region would generate its own "
                        "secret, and the datacenter's ingress authenticates every egress with one",
                        fix="create one secret, replicate it to every relay region "
                        "(aws secretsmanager replicate-secret-to-regions) and name each region's copy",
                    )
                )
            continue
        arn = relay.secret_arn.split(":")
        secret_region, secret_name = arn[3], arn[6]
        if secret_region != name:
            problems.append(
                Problem(
                    path,
                    f"{relay.secret_arn} is in {secret_region}; the relay reaches Secrets Manager only "
                    f"through the {name} endpoint",
                    fix=f"name the secret's {name} replica",
                )
            )
        elif first is not None and secret_name != first[1]:
            problems.append(
                Problem(
                    path,
                    f"secret {secret_name} is not the one regions.{first[0]}.relay names ({first[1]}); the "
                    "datacenter's ingress authenticates every egress with one secret",
                    fix=f"name the {name} replica of {first[1]}",
                )
            )
        first = first or (name, secret_name)
    return problems
