"""Checks of the ECS capacity: instance types mcastkit knows, and hosts enough for the tasks."""

from __future__ import annotations

from mcastkit.config import facts
from mcastkit.config.models import Capacity, Region
from mcastkit.config.problems import Problem


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


def placement_problems(region: Region) -> list[Problem]:
    """The hosts at ``capacity.min`` must hold every task in its domain's zones, and a second
    relay task while a deployment starts the new one before stopping the old (probes and
    sequencers stop first)."""
    capacity = region.capacity
    known = [d.name for d in region.domains]
    needed: dict[str, int] = {}
    if region.relay and region.relay.domain in known:
        needed[region.relay.domain] = 2 * region.relay.desired_count
    if region.probe and region.probe.domain in known:
        needed[region.probe.domain] = needed.get(region.probe.domain, 0) + region.probe.receivers + 1
    # One sequencer per stream, stopped before its successor starts (one writer per journal).
    for stream in region.streams:
        if stream.domain in known:
            needed[stream.domain] = needed.get(stream.domain, 0) + 1
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
        "a sequencer per stream" if region.streams_of(domain) else "",
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
