"""A Transit Gateway created with multicast support, and the provider VPC's attachment to it."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Tags
from aws_cdk import aws_ec2 as ec2
from constructs import Construct


def _enable(flag: bool) -> str:
    return "enable" if flag else "disable"


class MulticastTransitGateway(Construct):
    """A new Transit Gateway with ``MulticastSupport: enable`` and one VPC attachment.

    Multicast can only be chosen when a Transit Gateway is created, so this construct
    always creates one. The gateway carries multicast only: default route table
    association and propagation are off, so customer VPCs attached to the shared
    gateway get no unicast path to each other or to the provider's VPC.

    The attachment takes at most one subnet per availability zone (an AWS rule); pass
    one per zone (see :func:`mcastkit.constructs.vpc.first_subnet_per_zone`). It is an
    ``AWS::EC2::TransitGatewayAttachment``, whose ``SubnetIds`` update in place: on the older
    ``TransitGatewayVpcAttachment`` they are create-only, so adding a domain in a new zone
    would replace the attachment, and the replacement is refused
    (``DuplicateTransitGatewayAttachment``: one attachment per VPC and gateway).

    Args:
        vpc: the provider VPC to attach.
        attachment_subnets: one subnet per availability zone for the attachment.
        amazon_side_asn: the gateway's private BGP ASN (default 64512).
        auto_accept_shared_attachments: accept customers' VPC attachments without a
            manual acceptance (default ``False``: the provider accepts each one).
        description: the gateway's description (default names mcastkit).

    Attributes:
        transit_gateway: the ``AWS::EC2::TransitGateway``.
        transit_gateway_id, transit_gateway_arn: its id and ARN.
        attachment: the ``AWS::EC2::TransitGatewayAttachment``; ``attachment_id`` its id.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        vpc: ec2.IVpc,
        attachment_subnets: Sequence[ec2.ISubnet],
        amazon_side_asn: int = 64512,
        auto_accept_shared_attachments: bool = False,
        description: str = "mcastkit multicast transit gateway",
    ) -> None:
        super().__init__(scope, id_)
        zones = [s.availability_zone for s in attachment_subnets]
        if not zones:
            raise ValueError("MulticastTransitGateway needs at least one attachment subnet")
        if len(set(zones)) != len(zones):
            raise ValueError(f"a VPC attachment takes one subnet per availability zone, got zones {zones}")
        self.transit_gateway = ec2.CfnTransitGateway(
            self,
            "TransitGateway",
            description=description,
            amazon_side_asn=amazon_side_asn,
            multicast_support="enable",
            auto_accept_shared_attachments=_enable(auto_accept_shared_attachments),
            default_route_table_association="disable",
            default_route_table_propagation="disable",
            dns_support="disable",
            vpn_ecmp_support="disable",
        )
        Tags.of(self.transit_gateway).add("Name", description)
        self.transit_gateway_id: str = self.transit_gateway.ref
        self.transit_gateway_arn: str = self.transit_gateway.attr_transit_gateway_arn
        self.attachment = ec2.CfnTransitGatewayAttachment(
            self,
            "VpcAttachment",
            transit_gateway_id=self.transit_gateway_id,
            vpc_id=vpc.vpc_id,
            subnet_ids=[s.subnet_id for s in attachment_subnets],
            # Explicit: the handler's create and update default DnsSupport differently.
            options={"DnsSupport": "disable", "Ipv6Support": "disable", "ApplianceModeSupport": "disable"},
        )
        self.attachment_id: str = self.attachment.ref
