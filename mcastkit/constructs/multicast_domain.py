"""One Transit Gateway multicast domain, its subnet associations and its static sources."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from aws_cdk import Tags
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from mcastkit.config import Domain
from mcastkit.config.names import pascal

Registration = TypeVar(
    "Registration", ec2.CfnTransitGatewayMulticastGroupSource, ec2.CfnTransitGatewayMulticastGroupMember
)


def domain_options(domain: Domain) -> dict[str, str]:
    """The domain's ``Options`` as CloudFormation expects them: PascalCase keys.

    ``CfnTransitGatewayMulticastDomain.OptionsProperty`` renders camelCase keys that
    CloudFormation ignores, so the options are a plain dict.
    """
    return {
        "Igmpv2Support": "enable" if domain.igmpv2 else "disable",
        "StaticSourcesSupport": "disable" if domain.igmpv2 else "enable",
        "AutoAcceptSharedAssociations": "enable" if domain.auto_accept_shared_associations else "disable",
    }


class MulticastDomain(Construct):
    """A multicast domain on a Transit Gateway, associated with the given subnets.

    The domain is IGMPv2 or static-sources, never both (from ``domain.mode``). In a
    static domain every ENI of ``domain.static_members`` is registered as a member of every
    group, and every ENI of ``domain.static_sources`` is registered as the source of
    every group of the domain (only registered sources may send). Each subnet gets its
    own association (a subnet belongs to one domain only).

    Args:
        transit_gateway_id: the multicast-enabled Transit Gateway.
        attachment_id: the VPC attachment the subnets reach the gateway through.
        domain: the configured domain (mode, groups, static sources, auto-accept).
        subnets: the subnets to associate.

    Attributes:
        multicast_domain: the ``AWS::EC2::TransitGatewayMulticastDomain``.
        domain_id, domain_arn: its id and ARN.
        associations: one association per subnet, in order.
        group_sources, group_members: the registered static sources and members (empty for IGMPv2).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        transit_gateway_id: str,
        attachment_id: str,
        domain: Domain,
        subnets: Sequence[ec2.ISubnet],
    ) -> None:
        super().__init__(scope, id_)
        self.domain = domain
        self.multicast_domain = ec2.CfnTransitGatewayMulticastDomain(
            self, "MulticastDomain", transit_gateway_id=transit_gateway_id, options=domain_options(domain)
        )
        Tags.of(self.multicast_domain).add("Name", domain.name)
        self.domain_id: str = self.multicast_domain.attr_transit_gateway_multicast_domain_id
        self.domain_arn: str = self.multicast_domain.attr_transit_gateway_multicast_domain_arn
        # One association per subnet, named after the subnet's construct (``Subnet10200024``,
        # from its CIDR), never its position: every property of an association is create-only,
        # so a reorder would replace two of them and the new ones would collide with the old.
        self.associations = [
            ec2.CfnTransitGatewayMulticastDomainAssociation(
                self,
                f"Association{subnet.node.id}",
                transit_gateway_multicast_domain_id=self.domain_id,
                transit_gateway_attachment_id=attachment_id,
                subnet_id=subnet.subnet_id,
            )
            for subnet in subnets
        ]
        self.group_sources = self._register(
            "Source", ec2.CfnTransitGatewayMulticastGroupSource, domain.static_sources
        )
        # With IGMPv2 off, the gateway forwards only to registered members (Transit Gateway guide,
        # "Multicast domains"); the provider's own receivers are registered here, customers
        # register theirs (the kit's README says how).
        self.group_members = self._register(
            "Member", ec2.CfnTransitGatewayMulticastGroupMember, domain.static_members
        )

    def _register(self, role: str, kind: type[Registration], enis: Sequence[str]) -> list[Registration]:
        """Each ENI for each group of the domain, as a source or a member."""
        registered = []
        for eni in enis:
            for group in self.domain.groups:
                registration = kind(
                    self,
                    f"{role}{pascal(group.name)}{pascal(eni)}",
                    transit_gateway_multicast_domain_id=self.domain_id,
                    group_ip_address=str(group.address),
                    network_interface_id=eni,
                )
                # A registered ENI must sit in an associated subnet before it can register.
                for association in self.associations:
                    registration.add_resource_dependency(association)
                registered.append(registration)
        return registered
