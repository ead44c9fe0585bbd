"""Checks of one region: zones, subnets, domains and groups, quotas, the probe, the streams, recorded ids."""

from __future__ import annotations

from mcastkit.config.checks.capacity import capacity_problems, placement_problems
from mcastkit.config.checks.common import names_problems, overlaps, probe_group_problems, repeats
from mcastkit.config.checks.eks import eks_problems
from mcastkit.config.checks.relay import relay_problems
from mcastkit.config.checks.stream import shared_stream_problems, stream_problems
from mcastkit.config.models import Config, Domain, Quotas, Region
from mcastkit.config.names import SHARE_ARN, pascal
from mcastkit.config.problems import Path, Problem
from mcastkit.config.rules import acl_plan, member_acl_room, member_rule_counts


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
    problems += placement_problems(region)
    problems += _subnet_problems(name, region)
    problems += relay_problems(config, region)
    problems += _probe_problems(region)
    problems += stream_problems(region)
    problems += eks_problems(region)
    problems += _unheard_senders(region)
    problems += _shared_problems(config, name, region)
    problems += shared_stream_problems(name, region)
    return problems


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
    problems = names_problems(("domains",), [d.name for d in region.domains], "domain")
    for i, domain in enumerate(region.domains):
        path: Path = ("domains", i)
        problems += names_problems((*path, "groups"), [g.name for g in domain.groups], "group")
        for j, k in repeats(g.group_port for g in domain.groups):
            problems.append(
                Problem(
                    (*path, "groups", j),
                    f"{domain.groups[j].group_port} repeats groups[{k}] of domain {domain.name!r}",
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
    for i, j in repeats(s.availability_zone for s in region.subnets):
        problems.append(
            Problem(
                ("subnets", i, "availability_zone"),
                f"{region.subnets[i].availability_zone} already holds subnets[{j}] "
                f"({region.subnets[j].cidr}); "
                "the Transit Gateway attachment takes one multicast subnet per availability zone",
                fix="give each domain zones of its own",
            )
        )
    problems += overlaps((("subnets", i, "cidr"), s.cidr) for i, s in enumerate(region.subnets))
    # A subnet's construct id is its CIDR's digits: 10.1.10.0/24 and 10.11.0.0/24 collide.
    for i, j in repeats(pascal(str(s.cidr)) for s in region.subnets):
        cidr = region.subnets[i].cidr
        problems.append(
            Problem(
                ("subnets", i, "cidr"),
                f"{cidr} and subnets[{j}] ({region.subnets[j].cidr}) spell the same "
                f"CloudFormation id (Subnet{pascal(str(cidr))})",
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
    return [p.within(("probe",)) for p in probe_group_problems(region.domain(probe.domain), probe.group)]


def _unheard_senders(region: Region) -> list[Problem]:
    """The relay, the probe sender, the streams' sequencers and the EKS pods send from any subnet of
    their domain, and members admit UDP only from the domain's ``source_cidrs``: those subnets must
    lie inside them. None of them can be in a static domain, whose members are registered ENIs."""
    problems: list[Problem] = []
    known = [d.name for d in region.domains]
    senders: dict[str, list[str]] = {}
    # (path, who sends, domain, why their ENIs cannot be registered)
    sections: list[tuple[Path, str, str, str]] = [
        ((name,), name, section.domain, f"the {name}'s task ENIs change with every deployment")
        for name, section in (("relay", region.relay), ("probe", region.probe))
        if section is not None
    ]
    sections += [
        (("streams", i), "sequencer", s.domain, "the sequencer's task ENIs change with every deployment")
        for i, s in enumerate(region.streams)
    ]
    if region.eks:
        sections.append(
            (("eks",), "EKS pods", region.eks.domain, "the nodes' multicast ENIs are created at each launch")
        )
    for path, who, domain_name, why in sections:
        if domain_name not in known:
            continue
        domain = region.domain(domain_name)
        if domain.igmpv2:
            if who not in senders.get(domain.name, []):
                senders.setdefault(domain.name, []).append(who)
            continue
        problems.append(
            Problem(
                (*path, "domain"),
                f"{domain.name!r} is a static-sources domain: only registered ENIs may send or "
                f"receive there, and {why}",
                fix="use an igmpv2 domain",
            )
        )
    for i, domain in enumerate(region.domains):
        names = senders.get(domain.name, [])
        who = " and ".join(filter(None, [", ".join(names[:-1]), names[-1] if names else ""]))
        for subnet in region.subnets_of(domain.name) if who else []:
            if not any(subnet.cidr.subnet_of(source) for source in domain.source_cidrs):
                problems.append(
                    Problem(
                        ("domains", i, "source_cidrs"),
                        f"subnet {subnet.cidr} of domain {domain.name!r} is not inside its source_cidrs "
                        f"{', '.join(str(c) for c in domain.source_cidrs)}: members would drop what the "
                        f"{who} send{'' if ' and ' in who or who.endswith('pods') else 's'}",
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
