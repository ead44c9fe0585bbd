"""Checks across fields, run once every field is valid: each returns structured problems.

Every rule exists because of an AWS fact (see :mod:`mcastkit.config.facts` and the README's
config reference). A problem that follows from another one (a region refused, a domain that
cannot have a subnet) is reported once, at its root.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network

from mcastkit.config import facts
from mcastkit.config.models import Capacity, Config, Customer, Domain, Quotas, Region
from mcastkit.config.names import (
    SHARE_ARN,
    STACK_NAME,
    STACK_NAME_MAX,
    kit_stack_name,
    pascal,
)
from mcastkit.config.problems import Path, Problem, path_text
from mcastkit.config.rules import acl_plan, member_acl_room, member_rule_counts


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
    problems += _overlaps(
        (("regions", name, "vpc_cidr"), region.vpc_cidr) for name, region in config.regions.items()
    )
    problems += _secret_problems(config, refused)
    problems += customer_problems(config, refused_regions=refused)
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


def region_problems(config: Config, name: str, region: Region) -> list[Problem]:
    """Problems of one region, with paths relative to ``regions.<name>``."""
    problems = [
        Problem(("availability_zones", i), f"{az} is not in region {name}")
        for i, az in enumerate(region.availability_zones)
        if az[:-1] != name
    ]
    problems += [p.within(("capacity",)) for p in capacity_problems(region.capacity)]
    problems += _domain_problems(region, config.quotas)
    problems += _quota_problems(config, region)
    problems += _placement_problems(region)
    problems += _subnet_problems(name, region)
    problems += _relay_problems(config, region)
    problems += _probe_problems(region)
    problems += _unheard_senders(region)
    problems += _shared_problems(config, name, region)
    return problems


def capacity_problems(capacity: Capacity, *, places_tasks: bool = True) -> list[Problem]:
    """Problems of an ECS capacity (the provider's, or a customer kit's ``--cluster``).
    ``places_tasks``: mcastkit places tasks on it, so it must know the interfaces per host."""
    problems = []
    if capacity.min > capacity.max:
        problems.append(
            Problem(
                ("min",),
                f"min {capacity.min} is greater than max {capacity.max}",
                fix="raise max or lower min",
            )
        )
    if places_tasks and capacity.interfaces is None:
        known = ", ".join(sorted(facts.INSTANCE_TYPES))
        problems.append(
            Problem(
                ("instance_type",),
                f"{capacity.instance_type} is not in mcastkit's table of network interfaces per instance, "
                "which decides how many tasks a host runs",
                fix=f"choose one of {known}, or set capacity.network_interfaces (EC2 "
                "DescribeInstanceTypes: NetworkInfo.MaximumNetworkInterfaces)",
            )
        )
    return problems


def _placement_problems(region: Region) -> list[Problem]:
    """The hosts at ``capacity.min`` must hold every task in its domain's zones, and a second
    relay task while a deployment starts the new one before stopping the old (probes stop first)."""
    capacity = region.capacity
    known = [d.name for d in region.domains]
    needed: dict[str, int] = {}
    if region.relay and region.relay.domain in known:
        needed[region.relay.domain] = 2 * region.relay.desired_count
    if region.probe and region.probe.domain in known:
        needed[region.probe.domain] = needed.get(region.probe.domain, 0) + region.probe.receivers + 1
    if capacity.interfaces is None or not needed:
        return []
    host_zones = {s.availability_zone for s in region.host_subnets}

    def slots(hosts: int, domain: str) -> int:
        # An evenly balanced group puts at most ceil(hosts / zones) in each zone outside the domain's.
        outside = len(host_zones - {s.availability_zone for s in region.subnets_of(domain)})
        return max(0, hosts - -(-hosts // len(host_zones)) * outside) * capacity.task_slots

    short = [d for d, count in needed.items() if slots(capacity.min, d) < count]
    if not short and region.relay and capacity.max == capacity.min:  # min > max is reported already
        return [
            Problem(
                ("capacity", "max"),
                f"max {capacity.max} leaves no room above min {capacity.min}: replacing the hosts (a new "
                "AMI, new user data) would stop one before its successor starts, and the relay with it",
                fix=f"set capacity.max to at least {capacity.min + 1}",
            )
        ]
    if not short:
        return []
    enough = next(
        (m for m in range(capacity.min, 101) if all(slots(m, d) >= c for d, c in needed.items())), None
    )
    domain = short[0]
    tasks = [
        "the relay twice while a deployment overlaps"
        if region.relay and region.relay.domain == domain
        else "",
        "the probe receivers and sender" if region.probe and region.probe.domain == domain else "",
    ]
    if enough is None:
        fix = "choose an instance type with more interfaces"
    elif enough > capacity.max:
        fix = f"raise capacity.min to {enough}, and capacity.max with it"
    else:
        fix = f"raise capacity.min to {enough}"
    return [
        Problem(
            ("capacity", "min"),
            f"{capacity.min} host(s) of {capacity.instance_type} ({capacity.task_slots} task interfaces "
            f"each) leave {slots(capacity.min, domain)} for domain {domain!r}, whose tasks need "
            f"{needed[domain]} ({', '.join(t for t in tasks if t)})",
            fix=fix,
        )
    ]


def _static_problems(path: Path, domain: Domain, quotas: Quotas) -> list[Problem]:
    """Registered sources and members belong to static domains, which need at least one source,
    and every static source is registered for every group (sources per group: a quota)."""
    problems = []
    for field in ("static_sources", "static_members"):
        enis = getattr(domain, field)
        if domain.igmpv2 and enis:
            problems.append(
                Problem(
                    (*path, field),
                    f"domain {domain.name!r} is igmpv2 but lists {field} {', '.join(enis)}: a domain "
                    "supports IGMPv2 or static registration, never both",
                    fix=f"remove {field} or set mode: static",
                )
            )
    if domain.igmpv2:
        return problems
    if not domain.static_sources:
        problems.append(
            Problem(
                (*path, "static_sources"),
                f"static domain {domain.name!r} has no static_sources: only registered sources may "
                "send there",
                fix="list the senders' ENI ids, or use mode: igmpv2",
            )
        )
    if len(domain.static_sources) > quotas.sources_per_group:
        problems.append(
            Problem(
                (*path, "static_sources"),
                f"{len(domain.static_sources)} sources are registered for every group, over "
                f"quotas.sources_per_group ({quotas.sources_per_group}; the AWS default is 1)",
                fix="raise the Transit Gateway quota 'sources per multicast group', then "
                "quotas.sources_per_group",
            )
        )
    return problems


def _domain_problems(region: Region, quotas: Quotas) -> list[Problem]:
    problems = _names_problems(("domains",), [d.name for d in region.domains], "domain")
    for i, domain in enumerate(region.domains):
        path: Path = ("domains", i)
        problems += _names_problems((*path, "groups"), [g.name for g in domain.groups], "group")
        first_of: dict[tuple[object, int], int] = {}
        for j, group in enumerate(domain.groups):
            k = first_of.setdefault((group.address, group.port), j)
            if k != j:
                problems.append(
                    Problem(
                        (*path, "groups", j),
                        f"{group.group_port} repeats groups[{k}] of domain {domain.name!r}",
                        fix="give each group its own address:port",
                    )
                )
        problems += _static_problems(path, domain, quotas)
        for k, source in enumerate(domain.source_cidrs):
            if not source.subnet_of(region.vpc_cidr):
                problems.append(
                    Problem(
                        (*path, "source_cidrs", k),
                        f"{source} is not inside vpc_cidr {region.vpc_cidr}: members would accept the "
                        "feed from any VPC attached to the transit gateway, customers' included",
                        fix="list the provider's sending subnets",
                    )
                )
    return problems


def _names_problems(path: Path, names: list[str], what: str) -> list[Problem]:
    """Names used twice, and names that differ only by hyphens: both become the same
    CloudFormation id and export name (``md-1`` and ``md1`` are both ``Md1``)."""
    problems = []
    first: dict[str, int] = {}
    by_id: dict[str, str] = {}
    for i, name in enumerate(names):
        j = first.setdefault(name, i)
        if j != i:
            problems.append(Problem((*path, i, "name"), f"{what} name {name!r} is used twice"))
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


def _quota_problems(config: Config, region: Region) -> list[Problem]:
    quotas = config.quotas
    problems = []
    if len(region.domains) > quotas.domains_per_transit_gateway:
        problems.append(
            Problem(
                ("domains",),
                f"{len(region.domains)} domains exceed the quota of {quotas.domains_per_transit_gateway} "
                "per transit gateway",
                fix="raise quotas.domains_per_transit_gateway if AWS raised yours",
            )
        )
    groups = sum(len(d.groups) for d in region.domains)
    if groups > quotas.groups_per_transit_gateway:
        problems.append(
            Problem(
                ("domains",),
                f"{groups} groups exceed the quota of {quotas.groups_per_transit_gateway} "
                "per transit gateway",
                fix="raise quotas.groups_per_transit_gateway if AWS raised yours",
            )
        )
    inbound, outbound = member_rule_counts(region.domains)
    if max(inbound, outbound) > quotas.security_group_rules:
        problems.append(
            Problem(
                ("domains",),
                f"the members security group would need {inbound} inbound and {outbound} outbound "
                f"rules, over quotas.security_group_rules ({quotas.security_group_rules})",
                fix="use contiguous group ports and fewer source CIDRs, or raise the VPC quota",
            )
        )
    # The network stack's MemberRules (HTTPS out, HTTPS in from the VPC for the endpoints) and
    # one entry each way per relay link to the datacenter share one network ACL.
    room = member_acl_room(quotas, region)
    acl = acl_plan(region.domains, https_egress=True, serve_https_to=region.vpc_cidr, limit=room)
    relay_entries = quotas.network_acl_rules - room
    acl_in, acl_out = (len(rules) + relay_entries for rules in acl)
    if max(acl_in, acl_out) > quotas.network_acl_rules:
        problems.append(
            Problem(
                ("domains",),
                f"the multicast subnets' network ACL would need {acl_in} inbound and {acl_out} outbound "
                f"entries, over quotas.network_acl_rules ({quotas.network_acl_rules})",
                fix="summarize source_cidrs and relay.datacenter_cidrs, or raise the VPC quota",
            )
        )
    return problems


def _subnet_problems(name: str, region: Region) -> list[Problem]:
    problems = []
    domain_names = [d.name for d in region.domains]
    # A zone of another region is reported on availability_zones; not again on each subnet.
    zones_valid = all(az[:-1] == name for az in region.availability_zones)
    first_in_zone: dict[str, int] = {}
    for i, subnet in enumerate(region.subnets):
        path: Path = ("subnets", i)
        if not subnet.cidr.subnet_of(region.vpc_cidr):
            problems.append(
                Problem((*path, "cidr"), f"{subnet.cidr} is not inside vpc_cidr {region.vpc_cidr}")
            )
        if zones_valid and subnet.availability_zone not in region.availability_zones:
            problems.append(
                Problem(
                    (*path, "availability_zone"),
                    f"{subnet.availability_zone} is not one of availability_zones "
                    f"{', '.join(region.availability_zones)}",
                )
            )
        if subnet.domain not in domain_names:
            problems.append(
                Problem(
                    (*path, "domain"),
                    f"{subnet.domain!r} is not a domain of this region ({', '.join(domain_names)})",
                )
            )
        # The VPC has one Transit Gateway attachment (a second is refused with
        # DuplicateTransitGatewayAttachment), an attachment takes one subnet per zone, and a domain
        # association names a subnet of that attachment: so one multicast subnet per zone.
        j = first_in_zone.setdefault(subnet.availability_zone, i)
        if j != i:
            problems.append(
                Problem(
                    (*path, "availability_zone"),
                    f"{subnet.availability_zone} already holds subnets[{j}] ({region.subnets[j].cidr}); "
                    "the Transit Gateway attachment takes one multicast subnet per availability zone",
                    fix="give each domain zones of its own",
                )
            )
    problems += _overlaps((("subnets", i, "cidr"), s.cidr) for i, s in enumerate(region.subnets))
    first_id: dict[str, int] = {}
    for i, subnet in enumerate(region.subnets):
        # A subnet's construct id is its CIDR's digits: 10.1.10.0/24 and 10.11.0.0/24 collide.
        j = first_id.setdefault(pascal(str(subnet.cidr)), i)
        if j != i:
            problems.append(
                Problem(
                    ("subnets", i, "cidr"),
                    f"{subnet.cidr} and subnets[{j}] ({region.subnets[j].cidr}) spell the same "
                    f"CloudFormation id (Subnet{pascal(str(subnet.cidr))})",
                    fix="choose another CIDR for one of them",
                )
            )
    zones = len(region.availability_zones)
    if len(region.domains) > zones:
        # Each domain needs a subnet, each subnet a zone of its own: one root cause, one line.
        problems.append(
            Problem(
                ("domains",),
                f"{len(region.domains)} domains in {zones} availability zones: each domain needs a "
                "multicast subnet, and the attachment takes one multicast subnet per zone, so at most "
                f"{zones} domains",
                fix="add availability zones (up to 6) or carry more groups per domain",
            )
        )
        return problems
    if any(subnet.domain not in domain_names for subnet in region.subnets):
        return problems  # a subnet's misspelt domain explains a domain left without one
    for i, domain in enumerate(region.domains):
        if not region.subnets_of(domain.name):
            problems.append(
                Problem(
                    ("domains", i),
                    f"domain {domain.name!r} has no subnet",
                    fix=f"add a subnet with domain: {domain.name} in a free availability zone",
                )
            )
    return problems


def _relay_problems(config: Config, region: Region) -> list[Problem]:
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


def _secret_problems(config: Config, refused: set[str]) -> list[Problem]:
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


def _probe_problems(region: Region) -> list[Problem]:
    probe = region.probe
    if probe is None:
        return []
    domain_names = [d.name for d in region.domains]
    if probe.domain not in domain_names:
        return [
            Problem(
                ("probe", "domain"),
                f"{probe.domain!r} is not a domain of this region ({', '.join(domain_names)})",
            )
        ]
    groups = [g.name for g in region.domain(probe.domain).groups]
    if probe.group not in groups:
        return [
            Problem(
                ("probe", "group"),
                f"{probe.group!r} is not a group of domain {probe.domain!r} ({', '.join(groups)})",
            )
        ]
    return []


def _unheard_senders(region: Region) -> list[Problem]:
    """The relay and the probe sender send from any subnet of their domain, and members admit
    UDP only from the domain's ``source_cidrs``: those subnets must lie inside them."""
    problems: list[Problem] = []
    known = [d.name for d in region.domains]
    senders: dict[str, list[str]] = {}
    for section_name, section in (("relay", region.relay), ("probe", region.probe)):
        if section is None or section.domain not in known:
            continue
        domain = region.domain(section.domain)
        if domain.igmpv2:
            senders.setdefault(domain.name, []).append(section_name)
            continue
        problems.append(
            Problem(
                (section_name, "domain"),
                f"{domain.name!r} is a static-sources domain: only registered ENIs may send or "
                f"receive there, and the {section_name}'s task ENIs change with every deployment",
                fix="use an igmpv2 domain",
            )
        )
    for i, domain in enumerate(region.domains):
        who = " and ".join(senders.get(domain.name, []))
        for subnet in region.subnets_of(domain.name) if who else []:
            if not any(subnet.cidr.subnet_of(source) for source in domain.source_cidrs):
                problems.append(
                    Problem(
                        ("domains", i, "source_cidrs"),
                        f"subnet {subnet.cidr} of domain {domain.name!r} is not inside its source_cidrs "
                        f"{', '.join(str(c) for c in domain.source_cidrs)}: members would drop what the "
                        f"{who} send{'s' if ' and ' not in who else ''}",
                        fix=f"add {subnet.cidr} to source_cidrs",
                    )
                )
    return problems


def _shared_problems(config: Config, name: str, region: Region) -> list[Problem]:
    shared = region.shared
    if shared is None:
        return []
    known = [d.name for d in region.domains]
    problems = []
    for field, names in (("domain_ids", shared.domain_ids), ("share_arns", shared.share_arns)):
        problems += [
            Problem(("shared", field, d), f"{d!r} is not a domain of this region ({', '.join(known)})")
            for d in names
            if d not in known
        ]
    for domain, arn in shared.share_arns.items():
        match = SHARE_ARN.fullmatch(arn)
        if match is None:
            continue
        if match["region"] != name or match["account"] != config.provider_account:
            problems.append(
                Problem(
                    ("shared", "share_arns", domain),
                    f"{arn} is a share of account {match['account']} in {match['region']}, not of the "
                    f"provider account {config.provider_account} in {name}",
                    fix=f"record the share of the {config.stack_name(name, 'sharing')} stack",
                )
            )
    return problems


def customer_problems(config: Config, *, refused_regions: Iterable[str] = ()) -> list[Problem]:
    """Problems of the customers; entitlements to a region refused above are not reported again."""
    refused = set(refused_regions)
    problems: list[Problem] = []
    first_name: dict[str, int] = {}
    first_principal: dict[str, int] = {}
    for i, customer in enumerate(config.customers):
        path: Path = ("customers", i)
        j = first_name.setdefault(customer.name, i)
        if j != i:
            problems.append(Problem((*path, "name"), f"customer name {customer.name!r} is used twice"))
        j = first_principal.setdefault(customer.principal, i)
        if j != i:
            problems.append(
                Problem(
                    (*path, "principal"),
                    f"{customer.principal} is already customers[{j}] ({config.customers[j].name})",
                )
            )
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
    problems = []
    first_region: dict[str, int] = {}
    for j, entitlement in enumerate(customer.entitlements):
        where: Path = (*path, "entitlements", j)
        k = first_region.setdefault(entitlement.region, j)
        if k != j:
            problems.append(
                Problem(
                    (*where, "region"),
                    f"{entitlement.region} is already entitlements[{k}] of customer {customer.name!r}",
                    fix="list every domain of a region in one entitlement",
                )
            )
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


def _overlaps(items: Iterable[tuple[Path, IPv4Network]]) -> list[Problem]:
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
