"""Reusable CDK constructs: each does one architectural job and exposes what it creates.

The provider's per-region stacks (:mod:`mcastkit.stacks`) compose them, and so can a
customer-side stack: the constructs take plain CDK objects (a VPC, subnets, a security
group) and :class:`mcastkit.config.Domain` values, never the whole config.
"""

from mcastkit.constructs.cluster import Igmpv2Cluster
from mcastkit.constructs.domain_share import DomainShare
from mcastkit.constructs.member_rules import MemberRules
from mcastkit.constructs.multicast_domain import MulticastDomain
from mcastkit.constructs.transit_gateway import MulticastTransitGateway
from mcastkit.constructs.vpc import MulticastVpc

__all__ = [
    "DomainShare",
    "Igmpv2Cluster",
    "MemberRules",
    "MulticastDomain",
    "MulticastTransitGateway",
    "MulticastVpc",
]
