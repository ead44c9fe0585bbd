"""A RAM resource share that hands a Transit Gateway and one multicast domain to customers."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_ram as ram
from constructs import Construct


class DomainShare(Construct):
    """One ``AWS::RAM::ResourceShare`` of a Transit Gateway and a multicast domain.

    The principals are exactly those given: removing a principal from the list removes
    it from the share, which disassociates its subnets and deletes its members and
    sources (how access is revoked).

    Args:
        name: the share's name as RAM shows it to invitees.
        resource_arns: the Transit Gateway ARN and the multicast domain ARN.
        principals: 12-digit account ids or Organizations OU ARNs; at least one.
        allow_external_principals: whether accounts outside the provider's organization
            may be principals (they must accept an invitation). Required: there is no
            safe default.

    Attributes:
        resource_share: the ``AWS::RAM::ResourceShare``; ``share_arn`` its ARN.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        resource_arns: Sequence[str],
        principals: Sequence[str],
        allow_external_principals: bool,
    ) -> None:
        super().__init__(scope, id_)
        if not principals:
            raise ValueError(f"share {name!r}: no principals; create no share for a domain nobody receives")
        if len(set(principals)) != len(principals):
            raise ValueError(f"share {name!r}: repeated principals {sorted(principals)}")
        self.resource_share = ram.CfnResourceShare(
            self,
            "ResourceShare",
            name=name,
            resource_arns=list(resource_arns),
            principals=list(principals),
            allow_external_principals=allow_external_principals,
        )
        self.share_arn: str = self.resource_share.attr_arn
