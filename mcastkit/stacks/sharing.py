"""The sharing stack: one RAM share per multicast domain, to exactly its entitled customers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from constructs import Construct

from mcastkit.config import Config
from mcastkit.config.names import pascal
from mcastkit.constructs.domain_share import DomainShare
from mcastkit.constructs.replay_access import ReplayAccess
from mcastkit.stacks.base import RegionStack


class SharingStack(RegionStack):
    """RAM resource shares (Transit Gateway ARN + domain ARN) per domain of a region, and the
    allowed principals of each stream's replay endpoint service: both from the same entitlements
    (:meth:`Config.customers_of`), so a customer receives a stream's multicast and may replay it,
    or neither.

    Each share's ARN is a stack output (``<Domain>ShareArn``), which customers need for
    ``mcastkit onboard join``. A domain nobody is entitled to in this region gets no
    share at all: removing the last customer of a domain deletes its share. When no
    domain has a customer, the stack keeps one placeholder resource so CloudFormation
    can still update it (and delete the old shares) instead of failing on an empty
    template.

    Attributes:
        shares: :class:`DomainShare` by domain name (only domains with customers).
        replay_access: :class:`ReplayAccess` by stream name (only streams whose domain has customers).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: Config,
        region: str,
        transit_gateway_arn: str,
        domain_arns: Mapping[str, str],
        endpoint_service_ids: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            id_,
            description=f"mcastkit {config.project} {region}: RAM shares of the multicast domains",
            availability_zones=config.regions[region].availability_zones,
            **kwargs,
        )
        self.shares: dict[str, DomainShare] = {}
        for domain in config.regions[region].domains:
            customers = config.customers_of(region, domain.name)
            if not customers:
                continue
            self.shares[domain.name] = DomainShare(
                self,
                f"Share{pascal(domain.name)}",
                name=f"{config.project}-{region}-{domain.name}",
                resource_arns=[transit_gateway_arn, domain_arns[domain.name]],
                principals=[c.principal for c in customers],
                allow_external_principals=config.allow_external_principals(region, domain.name),
            )
            cdk.CfnOutput(
                self,
                f"{pascal(domain.name)}ShareArn",
                value=self.shares[domain.name].share_arn,
                description=f"RAM share of multicast domain {domain.name}: record it under "
                f"regions.{region}.shared.share_arns for the customers' hand-off kits",
            )
        self.replay_access: dict[str, ReplayAccess] = {}
        service_ids = endpoint_service_ids or {}
        for stream in config.regions[region].streams:
            customers = config.customers_of(region, stream.domain)
            if customers:
                self.replay_access[stream.name] = ReplayAccess(
                    self,
                    f"ReplayAccess{pascal(stream.name)}",
                    service_id=service_ids[stream.name],
                    accounts=[c.principal for c in customers],
                )
        if not self.shares and not self.replay_access:
            cdk.CfnWaitConditionHandle(self, "NoShares")
