"""Checks of the sequenced streams: their domain and groups, their ports, and who may reach them."""

from __future__ import annotations

from collections.abc import Iterable

from mcastkit.config.checks.common import names_problems, repeats
from mcastkit.config.models import Config, Region, Stream
from mcastkit.config.names import ENDPOINT_SERVICE_NAME
from mcastkit.config.problems import Path, Problem


def stream_problems(region: Region) -> list[Problem]:
    """Problems of ``region.streams``, with paths relative to ``regions.<name>`` (static domains
    and senders outside ``source_cidrs`` are the region checks' own, shared with the relay and probe)."""
    problems = names_problems(("streams",), [s.name for s in region.streams], "stream")
    known = [d.name for d in region.domains]
    for i, stream in enumerate(region.streams):
        path: Path = ("streams", i)
        if stream.domain not in known:
            problems.append(
                Problem(
                    (*path, "domain"),
                    f"{stream.domain!r} is not a domain of this region ({', '.join(known)})",
                )
            )
            continue
        problems += _group_problems(path, region, stream)
    problems += _shared_outputs(region)
    return problems


def _group_problems(path: Path, region: Region, stream: Stream) -> list[Problem]:
    domain = region.domain(stream.domain)
    groups = {g.name: g for g in domain.groups}
    listed = ", ".join(groups)
    problems = []
    for j, name in enumerate(stream.inputs):
        if name not in groups:
            problems.append(
                Problem(
                    (*path, "inputs", j),
                    f"{name!r} is not a group of domain {domain.name!r} ({listed})",
                )
            )
    problems += [
        Problem((*path, "inputs", j), f"{stream.inputs[j]!r} is listed twice")
        for j, _ in repeats(stream.inputs)
    ]
    for j, name in enumerate(stream.inputs):
        if name in groups and groups[name].probe:
            problems.append(
                Problem(
                    (*path, "inputs", j),
                    f"{name!r} is a probe group: the sequencer would number the probe's datagrams into "
                    "the stream",
                    fix="sequence the feed's own groups",
                )
            )
    if stream.output not in groups:
        problems.append(
            Problem(
                (*path, "output"),
                f"{stream.output!r} is not a group of domain {domain.name!r} ({listed})",
                fix="add a group for the sequenced stream to the domain and name it here",
            )
        )
        return problems
    if stream.output in stream.inputs:
        problems.append(
            Problem(
                (*path, "output"),
                f"{stream.output!r} is also one of the inputs: the sequencer would read back what it "
                "publishes, and receivers would get raw and MoldUDP64 datagrams on one group",
                fix="publish the sequenced stream on a group of its own",
            )
        )
    if groups[stream.output].probe:
        problems.append(
            Problem(
                (*path, "output"),
                f"{stream.output!r} is a probe group: the probe's datagrams would be mixed into the "
                "MoldUDP64 stream",
                fix="publish the sequenced stream on a group of its own",
            )
        )
    # The sequencer's input sockets are bound to their groups' ports in the task's one network
    # namespace: a re-request socket on one of those ports would collide with them.
    clash = sorted({groups[n].port for n in stream.inputs if n in groups} & {stream.retransmit_port})
    if clash:
        problems.append(
            Problem(
                (*path, "retransmit_port"),
                f"{stream.retransmit_port} is the UDP port of an input group; the sequencer binds its "
                "inputs' ports and its re-request port in one network namespace",
                fix="choose a retransmit_port no input group uses",
            )
        )
    return problems


def _shared_outputs(region: Region) -> list[Problem]:
    """Two sequencers publishing on one group: receivers would get two MoldUDP64 sessions
    interleaved, with the sequence numbers of both."""
    return [
        Problem(
            ("streams", i, "output"),
            f"group {region.streams[i].output!r} of domain {region.streams[i].domain!r} is already the "
            f"output of streams[{j}] ({region.streams[j].name})",
            fix="publish each sequenced stream on a group of its own",
        )
        for i, j in repeats((s.domain, s.output) for s in region.streams)
    ]


def stream_access_problems(config: Config, refused: Iterable[str] = ()) -> list[Problem]:
    """The customers of a stream's domain are its endpoint service's allowed principals, and
    PrivateLink allows accounts, IAM roles and users only (EC2 API reference,
    ModifyVpcEndpointServicePermissions): an OU cannot be given the replay service."""
    problems = []
    skip = set(refused)
    for i, customer in enumerate(config.customers):
        if customer.is_account:
            continue
        streams = [
            (region_name, stream.name)
            for region_name, region in config.regions.items()
            if region_name not in skip
            for stream in region.streams
            if stream.domain in customer.domains_in(region_name)
        ]
        if streams:
            named = ", ".join(f"{name} ({region})" for region, name in streams)
            problems.append(
                Problem(
                    ("customers", i, "principal"),
                    f"customer {customer.name!r} is an OU and is entitled to the sequenced stream(s) "
                    f"{named}, whose replay endpoint service can allow only accounts, IAM roles and users "
                    "(PrivateLink has no OU principal)",
                    fix="list the OU's accounts as customers of their own",
                )
            )
    return problems


def shared_stream_problems(name: str, region: Region) -> list[Problem]:
    """Recorded endpoint service names, relative to ``regions.<name>``: of a stream of this region,
    and of a service in this region."""
    shared = region.shared
    if shared is None:
        return []
    streams = [s.name for s in region.streams]
    problems = []
    for stream, service in shared.endpoint_services.items():
        where: Path = ("shared", "endpoint_services", stream)
        if stream not in streams:
            problems.append(
                Problem(where, f"{stream!r} is not a stream of this region ({', '.join(streams) or 'none'})")
            )
        elif ENDPOINT_SERVICE_NAME.fullmatch(service) and service.split(".")[3] != name:
            problems.append(
                Problem(
                    where,
                    f"{service} is an endpoint service of {service.split('.')[3]}, not of {name}",
                    fix="record the service the network stack of this region outputs",
                )
            )
    return problems
