"""One Transit Gateway multicast domain, its subnet associations and its static sources."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import CfnResource, Tags
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from mcastkit.config import Domain
from mcastkit.config.names import pascal


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
        self.group_sources: list[ec2.CfnTransitGatewayMulticastGroupSource] = []
        self.group_members: list[ec2.CfnTransitGatewayMulticastGroupMember] = []
        for eni in domain.static_sources:
            for group in domain.groups:
                source = ec2.CfnTransitGatewayMulticastGroupSource(
                    self,
                    f"Source{pascal(group.name)}{pascal(eni)}",
                    transit_gateway_multicast_domain_id=self.domain_id,
                    group_ip_address=str(group.address),
                    network_interface_id=eni,
                )
                self._after_associations(source)
                self.group_sources.append(source)
        # With IGMPv2 off, the gateway forwards only to registered members (Transit Gateway guide,
        # "Multicast domains"); the provider's own receivers are registered here, customers
        # register theirs (the kit's README says how).
        for eni in domain.static_members:
            for group in domain.groups:
                member = ec2.CfnTransitGatewayMulticastGroupMember(
                    self,
                    f"Member{pascal(group.name)}{pascal(eni)}",
                    transit_gateway_multicast_domain_id=self.domain_id,
                    group_ip_address=str(group.address),
                    network_interface_id=eni,
                )
                self._after_associations(member)
                self.group_members.append(member)

    def _after_associations(self, registration: CfnResource) -> None:
        # A registered ENI must sit in an associated subnet before it can register.
        for association in self.associations:
            registration.add_dependency(association)
