"""The firewall plan: which security-group rules and network-ACL entries multicast members,
the relay's datacenter links and the sequenced streams need.

Pure planning, no CDK: :class:`mcastkit.constructs.member_rules.MemberRules`,
:class:`mcastkit.constructs.relay_service.RelayService` and
:class:`mcastkit.constructs.stream_acl.StreamAcl` build the resources from it, and the
config checks the same plan against the VPC quotas before a synth.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mcastkit.config.models import Domain, Quotas, Region, Relay, Stream
from mcastkit.config.names import NFS_PORT

#: IP protocol numbers as network ACL entries take them.
IGMP, TCP, UDP = 2, 6, 17
#: The Transit Gateway sends IGMPv2 general queries from this address.
QUERIER_CIDR = "0.0.0.0/32"
#: IGMPv2 LEAVE messages go to the all-routers group.
ALL_ROUTERS_CIDR = "224.0.0.2/32"
ANYWHERE = "0.0.0.0/0"
EPHEMERAL_PORTS = (1024, 65535)
HTTPS = (443, 443)
#: Default network ACL quota: rules per direction (adjustable up to 40).
NACL_RULES_PER_DIRECTION = 20
FIRST_RULE_NUMBER = 100
RULE_NUMBER_STEP = 10
#: Network ACL rule numbers of the relay's entries (one inbound and one outbound entry per
#: datacenter link): below the member rules, so the two never collide.
RELAY_ACL_FIRST_RULE = 50
RELAY_ACL_LAST_RULE = FIRST_RULE_NUMBER - 1
#: Network ACL rule numbers of the streams' entries (replay, re-requests, the journal's NFS): below
#: the relay's.
STREAM_ACL_FIRST_RULE = 10
STREAM_ACL_LAST_RULE = RELAY_ACL_FIRST_RULE - 1


@dataclass(frozen=True)
class RelayLink:
    """One TCP path between the egress relay and the datacenter, as the firewalls see it."""

    peer: str
    """The datacenter side: a CIDR (listen mode) or an ingress address as a /32 (connect mode)."""
    port: int
    """The TCP port of whichever side listens."""
    inbound: bool
    """True when the datacenter dials the relay."""


def relay_links(relay: Relay) -> list[RelayLink]:
    """The TCP paths ``relay`` needs: from each datacenter CIDR to ``relay.port`` when the
    egress listens, or to each ``relay.connect`` endpoint when it dials."""
    if relay.connect:
        return [RelayLink(peer=f"{e.host}/32", port=e.port, inbound=False) for e in relay.connect]
    return [RelayLink(peer=str(cidr), port=relay.port, inbound=True) for cidr in relay.datacenter_cidrs]


def member_acl_room(quotas: Quotas, region: Region) -> int:
    """Network ACL entries per direction the members' rules may take in ``region``: the quota
    less the relay's (one each way per datacenter link) and the streams' (:func:`stream_acl_plan`),
    which share the ACL."""
    relay = len(relay_links(region.relay)) if region.relay else 0
    streams = max(len(rules) for rules in stream_acl_plan(region.streams, region.vpc_cidr))
    return quotas.network_acl_rules - relay - streams


@dataclass(frozen=True)
class AclRule:
    """One network ACL entry, before it gets a rule number."""

    egress: bool
    protocol: int
    cidr: str
    ports: tuple[int, int] | None = None


def covering_network(addresses: Iterable[ipaddress.IPv4Address]) -> ipaddress.IPv4Network:
    """The smallest single network that contains every address."""
    ips = list(addresses)
    network = ipaddress.IPv4Network(f"{min(ips)}/32")
    while not all(ip in network for ip in ips):
        network = network.supernet()
    return network


def _domain_acl_rules(domains: Sequence[Domain]) -> list[AclRule]:
    """Per domain: UDP in from its sources, IGMP and UDP out to the network covering its groups."""
    rules: list[AclRule] = []
    for domain in domains:
        ports = [g.port for g in domain.groups]
        span = (min(ports), max(ports))
        groups = str(covering_network(g.address for g in domain.groups))
        for net in ipaddress.collapse_addresses(domain.source_cidrs):
            rules.append(AclRule(egress=False, protocol=UDP, cidr=str(net), ports=span))
        rules.append(AclRule(egress=True, protocol=IGMP, cidr=groups))
        rules.append(AclRule(egress=True, protocol=UDP, cidr=groups, ports=span))
    return rules


def _merged_acl_rules(domains: Sequence[Domain]) -> list[AclRule]:
    """All domains as one: fewer entries when the per-domain plan exceeds the ACL quota."""
    ports = [g.port for d in domains for g in d.groups]
    span = (min(ports), max(ports))
    groups = str(covering_network(g.address for d in domains for g in d.groups))
    sources = ipaddress.collapse_addresses(c for d in domains for c in d.source_cidrs)
    return [
        *(AclRule(egress=False, protocol=UDP, cidr=str(net), ports=span) for net in sources),
        AclRule(egress=True, protocol=IGMP, cidr=groups),
        AclRule(egress=True, protocol=UDP, cidr=groups, ports=span),
    ]


def acl_plan(
    domains: Sequence[Domain],
    *,
    https_egress: bool,
    serve_https_to: ipaddress.IPv4Network | None,
    limit: int = NACL_RULES_PER_DIRECTION,
) -> tuple[list[AclRule], list[AclRule]]:
    """The (inbound, outbound) network ACL entries members need, in rule-number order.

    Network ACLs are stateless and capped at 20 rules per direction by default, so they
    are coarser than the security group: one port span and one covering network per
    domain, all domains merged if that would take more than ``limit`` entries in a
    direction (the ACL's quota less what else shares it). The security group carries the
    exact group/port rules.
    """
    base = [
        AclRule(egress=False, protocol=IGMP, cidr=QUERIER_CIDR),
        AclRule(egress=True, protocol=IGMP, cidr=ALL_ROUTERS_CIDR),
    ]
    service: list[AclRule] = []
    if https_egress:
        service += [
            AclRule(egress=True, protocol=TCP, cidr=ANYWHERE, ports=HTTPS),
            AclRule(egress=False, protocol=TCP, cidr=ANYWHERE, ports=EPHEMERAL_PORTS),
        ]
    if serve_https_to:
        service += [
            AclRule(egress=False, protocol=TCP, cidr=str(serve_https_to), ports=HTTPS),
            AclRule(egress=True, protocol=TCP, cidr=str(serve_https_to), ports=EPHEMERAL_PORTS),
        ]
    for domain_rules in (_domain_acl_rules(domains), _merged_acl_rules(domains)):
        rules = base + domain_rules + service
        inbound = [r for r in rules if not r.egress]
        outbound = [r for r in rules if r.egress]
        if max(len(inbound), len(outbound)) <= limit:
            break
    return inbound, outbound


def stream_acl_plan(
    streams: Sequence[Stream], vpc_cidr: ipaddress.IPv4Network
) -> tuple[list[AclRule], list[AclRule]]:
    """The (inbound, outbound) network ACL entries the sequenced streams need in the multicast
    subnets (the only subnets: the sequencer tasks, the load balancers' nodes and the journals'
    mount targets are all there), each way with the VPC's CIDR and nothing beyond it:

    * TCP to the replay ports: PrivateLink into the load balancer's nodes, the nodes to the
      sequencer (and their health checks);
    * TCP to NFS: the sequencer to its journal's mount target;
    * UDP on 1024-65535: MoldUDP64 re-requests to the retransmit ports and the answers to the
      requesters' ports (a requester in these subnets needs both, as the sequencer does).

    The TCP replies on ephemeral ports are already admitted by the members' HTTPS entries (in from
    anywhere, out to the VPC: :func:`acl_plan` with ``https_egress`` and ``serve_https_to``). Port
    ranges merge contiguous ports, so several streams need few entries.

    Inferred, not documented: that a consumer's PrivateLink connection reaches the load balancer's
    nodes, as far as their subnet's ACL is concerned, from addresses of this VPC (the PrivateLink
    guide says only that targets see the nodes' addresses). If customers' endpoints connect but time
    out, these entries are the first thing to check.
    """
    if not streams:
        return [], []
    vpc = str(vpc_cidr)
    rules: list[AclRule] = []
    for egress in (False, True):
        rules += [
            AclRule(egress=egress, protocol=TCP, cidr=vpc, ports=ports)
            for ports in port_ranges(s.replay_port for s in streams)
        ]
        rules.append(AclRule(egress=egress, protocol=TCP, cidr=vpc, ports=(NFS_PORT, NFS_PORT)))
        rules.append(AclRule(egress=egress, protocol=UDP, cidr=vpc, ports=EPHEMERAL_PORTS))
    return [r for r in rules if not r.egress], [r for r in rules if r.egress]


def port_ranges(ports: Iterable[int]) -> list[tuple[int, int]]:
    """Merge ports into the fewest contiguous (first, last) ranges: 1,2,3,7 -> (1,3),(7,7)."""
    ranges: list[tuple[int, int]] = []
    for port in sorted(set(ports)):
        if ranges and port == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], port)
        else:
            ranges.append((port, port))
    return ranges


def member_rule_counts(domains: Iterable[Domain]) -> tuple[int, int]:
    """(inbound, outbound) rules of the members security group that MemberRules generates.

    In: IGMP from the querier, and UDP from each source CIDR per contiguous port range.
    Out: IGMP to 224.0.0.2, HTTPS to the endpoints, and IGMP + UDP to each group.
    """
    domains = list(domains)
    inbound = 1 + sum(len(d.source_cidrs) * len(port_ranges(g.port for g in d.groups)) for d in domains)
    outbound = 2 + sum(2 * len(d.groups) for d in domains)
    return inbound, outbound
