"""Who loses delivery when a plan replaces or removes what customers depend on.

Resources are matched to domains by their construct path (``.../DomainMarketData/...`` in the
network stack, ``.../ShareMarketData`` in the sharing stack) and to customers by the config's
entitlements; the durations are what the replacement implies, not measurements.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcastkit.config import Config, Stream
from mcastkit.config.names import pascal
from mcastkit.plan.diff import Action, Plan, ResourceChange

#: Resource types whose loss cuts customers off, most severe first.
_SEVERITY = (
    "AWS::EC2::TransitGateway",
    "AWS::EC2::TransitGatewayAttachment",
    "AWS::EC2::TransitGatewayVpcAttachment",
    "AWS::EC2::TransitGatewayMulticastDomain",
    "AWS::RAM::ResourceShare",
    "AWS::EC2::TransitGatewayMulticastDomainAssociation",
    "AWS::EC2::VPCEndpointService",
    "AWS::ElasticLoadBalancingV2::LoadBalancer",
    "AWS::EFS::FileSystem",
)
#: Construct id prefixes of a stream's resources (``JournalMdSeq``, ``ReplayEndpointMdSeq``).
_STREAM_PREFIXES = ("ReplayEndpoint", "Journal")
_WHOLE_REGION = set(_SEVERITY[:3])


@dataclass(frozen=True)
class Impact:
    """What one customer loses, in one region, for how long."""

    customer: str
    region: str
    #: The domain lost, or ``None`` for every domain of the region.
    domain: str | None
    what: str
    how_long: str
    #: 0 is the worst (the whole gateway); a revoked entitlement is the mildest.
    severity: int = 0


def _domain_of(change: ResourceChange, config: Config, region: str) -> str | None:
    by_pascal = {pascal(d.name): d.name for d in config.regions[region].domains}
    for segment in change.path.split("/"):
        for prefix in ("Domain", "Share"):
            name = by_pascal.get(segment.removeprefix(prefix)) if segment.startswith(prefix) else None
            if name:
                return name
    stream = _stream_of(change, config, region)
    return stream.domain if stream else None


def _stream_of(change: ResourceChange, config: Config, region: str) -> Stream | None:
    by_pascal = {pascal(s.name): s for s in config.regions[region].streams}
    for segment in change.path.split("/"):
        for prefix in _STREAM_PREFIXES:
            stream = by_pascal.get(segment.removeprefix(prefix)) if segment.startswith(prefix) else None
            if stream:
                return stream
    return None


def _region_of(change: ResourceChange, config: Config) -> str | None:
    for region in config.regions:
        if change.stack.startswith(f"{config.project}-{region}-"):
            return region
    return None


def _loss(change: ResourceChange, config: Config, region: str) -> tuple[str, str, list[str]] | None:
    """(what, how long, customers) for one replaced or removed resource, or None if no customer
    loses; the cases come most severe first (see ``_SEVERITY``)."""
    everyone = sorted({c.name for c in config.customers if c.domains_in(region)})
    domain = _domain_of(change, config, region)
    customers = [c.name for c in config.customers_of(region, domain)] if domain else []
    gone = change.action is Action.REMOVE
    match change.type:
        case "AWS::EC2::TransitGateway":
            return (
                "every domain: the transit gateway",
                "until each attaches to the new gateway (a new kit)",
                everyone,
            )
        case "AWS::EC2::TransitGatewayAttachment" | "AWS::EC2::TransitGatewayVpcAttachment":
            return (
                "every domain: the provider VPC's attachment",
                "until a new attachment is available; CloudFormation creates it before deleting the old one, "
                "which AWS refuses (DuplicateTransitGatewayAttachment)",
                everyone,
            )
        case "AWS::EC2::TransitGatewayMulticastDomain" if domain:
            how = "for good" if gone else "until each redeploys its stack with the new domain id"
            return f"domain {domain}", how, customers
        case "AWS::EC2::TransitGatewayMulticastDomainAssociation" if domain:
            how = (
                "for good (the subnet leaves the domain)"
                if gone
                else "while the association is replaced; the new one is created first and collides with the "
                "old (AlreadyExists)"
            )
            return f"the provider's senders in one subnet of {domain}", how, customers
        case "AWS::RAM::ResourceShare" if domain and gone:
            return f"domain {domain}: the share is removed", "for good (revoked)", customers
        case "AWS::RAM::ResourceShare" if domain:
            return (
                f"domain {domain}: the share (their associations go with it)",
                "until they accept the new share and associate again",
                customers,
            )
    stream = _stream_of(change, config, region)
    if stream is None:
        return None
    match change.type:
        case "AWS::EC2::VPCEndpointService":
            how = "for good" if gone else "until each makes its interface endpoint again (a new service name)"
            return f"stream {stream.name}'s replay: its endpoint service", how, customers
        case "AWS::ElasticLoadBalancingV2::LoadBalancer":
            return (
                f"stream {stream.name}'s replay: the load balancer behind its endpoint service",
                "for good" if gone else "while the endpoint service moves to the new one (inferred)",
                customers,
            )
        case "AWS::EFS::FileSystem":
            return (
                f"stream {stream.name}'s journal: replays of what was sequenced before",
                "for good (the old file system is retained, unused)",
                customers,
            )
    return None


def impacts(plan: Plan, config: Config) -> list[Impact]:
    """Customers who lose delivery through a replacement or a removal, and entitlements revoked."""
    found: list[Impact] = []
    for change in plan.changes:
        region = _region_of(change, config)
        if region is None or change.action not in (Action.REPLACE, Action.REMOVE):
            continue
        loss = _loss(change, config, region)
        if loss is not None:
            what, how_long, customers = loss
            domain = None if change.type in _WHOLE_REGION else _domain_of(change, config, region)
            rank = _SEVERITY.index(change.type)
            found += [Impact(c, region, domain, what, how_long, rank) for c in customers]
    return found


def worst(found: list[Impact]) -> list[Impact]:
    """One impact per customer, region and domain: the first found of the most severe kind (a
    loss of every domain covers each domain's)."""
    ranked = sorted(found, key=lambda i: i.severity)
    kept: dict[tuple[str, str], list[Impact]] = {}
    for impact in ranked:
        mine = kept.setdefault((impact.customer, impact.region), [])
        if not any(k.domain is None or k.domain == impact.domain for k in mine):
            mine.append(impact)
    return [i for impacts_ in kept.values() for i in impacts_]


def revoked(old: Config, new: Config) -> list[Impact]:
    """Entitlements the new config takes away: delivery stops when the sharing stack deploys."""
    found = []
    for customer in old.customers:
        for region in old.regions:
            kept = set(new.customer(customer.name).domains_in(region)) if _has(new, customer.name) else set()
            for domain in customer.domains_in(region):
                if domain not in kept:
                    found.append(
                        Impact(
                            customer.name,
                            region,
                            domain,
                            f"domain {domain} (revoked)",
                            "for good",
                            len(_SEVERITY),
                        )
                    )
    return found


def _has(config: Config, name: str) -> bool:
    return any(c.name == name for c in config.customers)
