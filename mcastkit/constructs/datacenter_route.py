"""Routes from the relay's subnets to the datacenter, through the gateway that reaches it."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from mcastkit.config.names import pascal


class DatacenterRoute(Construct):
    """A route to each datacenter CIDR in each subnet's route table, through ``gateway_id``.

    The multicast subnets have no NAT and no internet path, and the multicast Transit Gateway
    carries no unicast (its route tables are off), so the relay reaches the datacenter's ingress
    only through the provider's own Direct Connect or VPN path:

    * a virtual private gateway (``vgw-...``): attached to the VPC here (a VPC takes one);
    * a transit gateway (``tgw-...``): the provider attaches the VPC to it; this adds the routes.

    Args:
        vpc: the provider VPC.
        subnets: the relay's subnets.
        datacenter_cidrs: where the ingress relays are.
        gateway_id: ``vgw-...`` or ``tgw-...``.

    Attributes:
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
        attachment = None
        if gateway_id.startswith("vgw-"):
            router = ec2.RouterType.GATEWAY
            attachment = ec2.CfnVPCGatewayAttachment(
                self, "GatewayAttachment", vpc_id=vpc.vpc_id, vpn_gateway_id=gateway_id
            )
        elif gateway_id.startswith("tgw-"):
            router = ec2.RouterType.TRANSIT_GATEWAY
        else:
            raise ValueError(f"gateway_id {gateway_id!r}: expected a vgw- or tgw- id")
        self.routes: list[ec2.CfnRoute] = []
        for subnet in subnets:
            for cidr in datacenter_cidrs:
                route = ec2.CfnRoute(
                    self,
                    f"Route{subnet.node.id}{pascal(str(cidr))}",
                    route_table_id=subnet.route_table.route_table_id,
                    destination_cidr_block=str(cidr),
                    gateway_id=gateway_id if router is ec2.RouterType.GATEWAY else None,
                    transit_gateway_id=gateway_id if router is ec2.RouterType.TRANSIT_GATEWAY else None,
                )
                if attachment is not None:
                    route.add_dependency(attachment)
                self.routes.append(route)
