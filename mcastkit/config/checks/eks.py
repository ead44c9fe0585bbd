"""Checks of a region's ``eks:`` section: the pods' domain, the nodes' zones and subnets, pod
capacity, who reaches the API, and the probe's pods (one multicast pod per node)."""

from __future__ import annotations

from ipaddress import IPv4Network

from mcastkit.config import facts
from mcastkit.config.checks.common import probe_group_problems, repeats
from mcastkit.config.models import Eks, EndpointAccess, Region
from mcastkit.config.names import pascal
from mcastkit.config.problems import Path, Problem

#: Addresses AWS keeps in every subnet (VPC user guide, "Subnet CIDR blocks": the first four and
#: the last).
RESERVED_PER_SUBNET = 5


def eks_problems(region: Region) -> list[Problem]:
    """Problems of ``region.eks``, with paths relative to ``regions.<name>``."""
    eks = region.eks
    if eks is None:
        return []
    path: Path = ("eks",)
    problems = [p.within(path) for p in _node_subnet_problems(region, eks)]
    problems += [p.within(path) for p in _access_problems(eks)]
    problems += [p.within(path) for p in _capacity_problems(eks)]
    known = [d.name for d in region.domains]
    if eks.domain not in known:
        problems.append(
            Problem((*path, "domain"), f"{eks.domain!r} is not a domain of this region ({', '.join(known)})")
        )
        return problems
    zones = region.eks_node_zones()
    if not zones:
        multicast = ", ".join(s.availability_zone for s in region.subnets_of(eks.domain)) or "none"
        problems.append(
            Problem(
                (*path, "node_subnets"),
                f"no node subnet is in a zone where domain {eks.domain!r} has a multicast subnet "
                f"({multicast}): a node's multicast ENI is in its own zone",
                fix="add a node subnet in one of those zones",
            )
        )
    if eks.probe:
        problems += [p.within((*path, "probe")) for p in _probe_problems(region, eks, len(zones))]
    return problems


def _node_subnet_problems(region: Region, eks: Eks) -> list[Problem]:
    problems = []
    for i, subnet in enumerate(eks.node_subnets):
        where: Path = ("node_subnets", i)
        if not subnet.cidr.subnet_of(region.vpc_cidr):
            problems.append(
                Problem((*where, "cidr"), f"{subnet.cidr} is not inside vpc_cidr {region.vpc_cidr}")
            )
        if subnet.availability_zone not in region.availability_zones:
            problems.append(
                Problem(
                    (*where, "availability_zone"),
                    f"{subnet.availability_zone} is not one of availability_zones "
                    f"{', '.join(region.availability_zones)}",
                )
            )
    repeated = repeats(s.availability_zone for s in eks.node_subnets)
    for i, j in repeated:
        problems.append(
            Problem(
                ("node_subnets", i, "availability_zone"),
                f"{eks.node_subnets[i].availability_zone} already has node_subnets[{j}]",
                fix="one node subnet per zone",
            )
        )
    zones = {s.availability_zone for s in eks.node_subnets}
    if len(zones) < facts.EKS_CLUSTER_ZONES_MIN and not repeated:
        problems.append(
            Problem(
                ("node_subnets",),
                f"node subnets in {len(zones)} availability zone; EKS places its control-plane "
                "interfaces in the cluster's subnets, which must span at least "
                f"{facts.EKS_CLUSTER_ZONES_MIN}",
                fix="add a node subnet in a second zone (nodes run only where the domain has a "
                "multicast subnet; the other zone may hold the control plane's interfaces only)",
            )
        )
    # Against the multicast subnets (by their full path) and each other.
    taken: list[tuple[str, IPv4Network]] = [(f"subnets[{i}]", s.cidr) for i, s in enumerate(region.subnets)]
    for i, subnet in enumerate(eks.node_subnets):
        clash = next((name for name, cidr in taken if subnet.cidr.overlaps(cidr)), None)
        spelling = next((name for name, cidr in taken if pascal(str(cidr)) == pascal(str(subnet.cidr))), None)
        if clash:
            problems.append(Problem(("node_subnets", i, "cidr"), f"{subnet.cidr} overlaps {clash}"))
        elif spelling:
            problems.append(
                Problem(
                    ("node_subnets", i, "cidr"),
                    f"{subnet.cidr} and {spelling} spell the same CloudFormation id "
                    f"(Subnet{pascal(str(subnet.cidr))})",
                    fix="choose another CIDR",
                )
            )
        taken.append((f"eks.node_subnets[{i}]", subnet.cidr))
    pods = eks.pods_per_node
    if pods is not None:
        for i, subnet in enumerate(eks.node_subnets):
            usable = subnet.cidr.num_addresses - RESERVED_PER_SUBNET
            needed = eks.nodes_per_zone * (pods + 1)
            if needed > usable:
                problems.append(
                    Problem(
                        ("node_subnets", i, "cidr"),
                        f"{subnet.cidr} has {usable} usable addresses; {eks.nodes_per_zone} nodes with "
                        f"{pods} pods each need {needed} (a VPC address per pod and per node)",
                        fix="use a larger node subnet, or fewer nodes per zone",
                    )
                )
    return problems


def _access_problems(eks: Eks) -> list[Problem]:
    public = eks.endpoint is EndpointAccess.PUBLIC_AND_PRIVATE
    if public and not eks.public_access_cidrs:
        return [
            Problem(
                ("public_access_cidrs",),
                "endpoint: public-and-private with no public_access_cidrs would open the Kubernetes API "
                "to the whole internet",
                fix="list the CIDRs kubectl runs from, or use endpoint: private",
            )
        ]
    if not public and eks.public_access_cidrs:
        return [
            Problem(
                ("public_access_cidrs",),
                "public_access_cidrs is only for endpoint: public-and-private; a private endpoint has no "
                "public address",
                fix="remove public_access_cidrs, or set endpoint: public-and-private",
            )
        ]
    problems = [
        Problem(("admin_roles", i), f"{eks.admin_roles[i]} is listed twice", fix="list each role once")
        for i, _ in repeats(eks.admin_roles)
    ]
    for i, cidr in enumerate([*eks.public_access_cidrs, *eks.admin_cidrs]):
        field, index = (
            ("public_access_cidrs", i)
            if i < len(eks.public_access_cidrs)
            else ("admin_cidrs", i - len(eks.public_access_cidrs))
        )
        if cidr.prefixlen < facts.WIDEST_DATACENTER_PREFIX:
            problems.append(
                Problem(
                    (field, index),
                    f"{cidr} is wider than a /{facts.WIDEST_DATACENTER_PREFIX}: it would open the "
                    "Kubernetes API to a large part of the internet",
                    fix="list the networks kubectl runs from",
                )
            )
    return problems


def _capacity_problems(eks: Eks) -> list[Problem]:
    if eks.pods_per_node is None:
        known = ", ".join(sorted(facts.IPV4_PER_INTERFACE_AND_VCPUS))
        return [
            Problem(
                ("instance_type",),
                f"{eks.instance_type} is not in mcastkit's table of interfaces and addresses per "
                "instance, which decides the nodes' max pods",
                fix=f"choose one of {known}, or set eks.max_pods to (interfaces - 1) x (addresses per "
                "interface - 1) + 2 (the multicast ENI is not the VPC CNI's)",
            )
        ]
    return []


def _probe_problems(region: Region, eks: Eks, zones: int) -> list[Problem]:
    probe = eks.probe
    assert probe is not None
    problems = probe_group_problems(region.domain(eks.domain), probe.group)
    nodes = zones * eks.nodes_per_zone
    pods = probe.receivers + 1
    if zones and pods > nodes:
        problems.append(
            Problem(
                ("receivers",),
                f"{probe.receivers} receivers and a sender need {pods} multicast pods, and each of the "
                f"{nodes} nodes holds one (its one multicast ENI moves into the pod)",
                fix=f"lower eks.probe.receivers to {nodes - 1} or raise eks.nodes_per_zone",
            )
        )
    return problems
