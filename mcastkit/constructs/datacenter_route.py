"""Routes from the relay's subnets to the datacenter, through the gateway that reaches it."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network

from aws_cdk import CfnResource
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from mcastkit.constructs.vpc import first_subnet_per_zone


class DatacenterRoute(Construct):
    """A route to each datacenter CIDR in each subnet's route table, through ``gateway_id``.

    The multicast subnets have no NAT and no internet path, and the multicast Transit Gateway
    carries no unicast (its route tables are off), so the relay reaches the datacenter's ingress
    only through the provider's own Direct Connect or VPN path. The VPC is attached to that
    gateway here, in the same deploy, so the routes have a target when they are created:

    * a virtual private gateway (``vgw-...``): a VPC gateway attachment (a gateway serves one VPC);
    * a transit gateway (``tgw-...``): a transit gateway attachment in ``subnets`` (one per zone).
      A gateway of another account keeps it ``pendingAcceptance`` until that account accepts
      (CloudFormation waits about 20 minutes), unless it auto-accepts.

    Args:
        vpc: the provider VPC.
        subnets: the relay's subnets.
        datacenter_cidrs: where the ingress relays are.
        gateway_id: ``vgw-...`` or ``tgw-...``.

    Attributes:
        attachment: the VPC's attachment to the gateway.
        routes: the ``AWS::EC2::Route`` resources, one per subnet and CIDR.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        vpc: ec2.IVpc,
        subnets: Sequence[ec2.ISubnet],
        datacenter_cidrs: Sequence[IPv4Network],
        gateway_id: str,
    ) -> None:
        super().__init__(scope, id_)
        attachment: CfnResource
        if gateway_id.startswith("vgw-"):
            router = ec2.RouterType.GATEWAY
            attachment = ec2.CfnVPCGatewayAttachment(
                self, "GatewayAttachment", vpc_id=vpc.vpc_id, vpn_gateway_id=gateway_id
            )
        elif gateway_id.startswith("tgw-"):
            router = ec2.RouterType.TRANSIT_GATEWAY
            attachment = ec2.CfnTransitGatewayAttachment(
                self,
                "GatewayAttachment",
                transit_gateway_id=gateway_id,
                vpc_id=vpc.vpc_id,
                subnet_ids=[s.subnet_id for s in first_subnet_per_zone(subnets)],
                options={
                    "DnsSupport": "disable",
                    "Ipv6Support": "disable",
                    "ApplianceModeSupport": "disable",
                },
            )
        else:
            raise ValueError(f"gateway_id {gateway_id!r}: expected a vgw- or tgw- id")
        self.attachment = attachment
        self.routes: list[ec2.CfnRoute] = []
        for subnet in subnets:
            for cidr in datacenter_cidrs:
                # Dashes keep 10.1.10.0/24 and 10.11.0.0/24 apart (both spell 10110024 without them).
                route = ec2.CfnRoute(
                    self,
                    f"Route{subnet.node.id}To{str(cidr).replace('.', '-').replace('/', '-')}",
                    route_table_id=subnet.route_table.route_table_id,
                    destination_cidr_block=str(cidr),
                    gateway_id=gateway_id if router is ec2.RouterType.GATEWAY else None,
                    transit_gateway_id=gateway_id if router is ec2.RouterType.TRANSIT_GATEWAY else None,
                )
                route.add_resource_dependency(attachment)
                self.routes.append(route)
