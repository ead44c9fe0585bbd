"""A stream's replay service as a PrivateLink endpoint service: the path customers have back.

Customers attached for multicast have no unicast route to the provider (the Transit Gateway's
route tables are off), so MoldUDP64 re-requests, which go unicast to the publisher, cannot reach
it. The sequencer's SoupBinTCP replay service can, through AWS PrivateLink: an internal Network
Load Balancer in front of the sequencer task, and an endpoint service that the customers entitled
to the stream's domain (:class:`mcastkit.constructs.replay_access.ReplayAccess`, in the sharing
stack) connect interface endpoints of their own VPCs to.

The load balancer, its listener port and the endpoint service are what a customer's endpoint
depends on, so they live in the network stack (termination protection) and change with nothing
but the stream: the allowed principals are a resource of their own in the sharing stack (adding a
customer updates only that), and the listener and target group are the sequencer's, in the
compute stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from constructs import Construct

from mcastkit.config import Stream


class ReplayEndpoint(Construct):
    """An internal Network Load Balancer and the endpoint service of one stream's replay port.

    * The load balancer spans ``subnets`` (one per zone): a customer's interface endpoint can be
      created only in zones, by AZ id, that the load balancer is in (PrivateLink guide, "Create an
      endpoint service"), so every zone of the VPC is offered. Cross-zone load balancing is on:
      the stream has one sequencer, in one zone, and every zone's node must reach it.
    * Its security group admits nothing and sends only the replay port, to the VPC's CIDR (the
      sequencer's address changes with every task; its security group admits the port from this
      group only). Inbound rules are not applied to PrivateLink
      traffic (``EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic: off``): who may connect is
      decided by the endpoint service's allowed principals, and nothing inside the VPC reaches the
      load balancer at all.
    * The endpoint service accepts connections without a manual step (``AcceptanceRequired:
      false``): its allowed principals are exactly the entitled accounts, the same list the RAM
      shares are made from, so acceptance would only repeat that decision and leave each
      customer's stack waiting for the provider. Removing a principal stops new connections
      only: an endpoint already connected stays until the provider rejects it (``aws ec2
      reject-vpc-endpoint-connections``), with acceptance required or not.

    Args:
        vpc: the provider VPC.
        subnets: one subnet per zone the service is offered in (the VPC's endpoint subnets).
        vpc_cidr: the VPC's CIDR, where the sequencer's tasks are.
        stream: the stream (its name and replay port).

    Attributes:
        security_group, load_balancer, endpoint_service (the ``AWS::EC2::VPCEndpointService``),
        service_id, service_name (``com.amazonaws.vpce.<region>.<service id>``).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        vpc: ec2.IVpc,
        subnets: Sequence[ec2.ISubnet],
        vpc_cidr: IPv4Network,
        stream: Stream,
    ) -> None:
        super().__init__(scope, id_)
        if not subnets:
            raise ValueError(f"no subnet given for the replay endpoint of stream {stream.name!r}")
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description=f"mcastkit replay of stream {stream.name}: PrivateLink in, the sequencer out",
            allow_all_outbound=False,
        )
        # Inline, to a CIDR: a security group whose only egress rules are resources of their own
        # (as rules naming another security group are) keeps EC2's default allow-all egress rule.
        self.security_group.add_egress_rule(
            ec2.Peer.ipv4(str(vpc_cidr)),
            ec2.Port.tcp(stream.replay_port),
            f"replay of {stream.name} to its sequencer task (whose address changes with each task)",
        )
        self.load_balancer = elbv2.NetworkLoadBalancer(
            self,
            "LoadBalancer",
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnets=list(subnets)),
            internet_facing=False,
            cross_zone_enabled=True,
            security_groups=[self.security_group],
            enforce_security_group_inbound_rules_on_private_link_traffic=False,
        )
        cdk.Validations.of(self.load_balancer).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-ELB2",
                reason="A Network Load Balancer writes access logs for TLS listeners only (ELB guide, "
                "'Access logs for your Network Load Balancer'); this one has a TCP listener, so a log bucket "
                "would stay empty. Its connections are in the VPC's flow logs.",
            )
        )
        self.endpoint_service = ec2.CfnVPCEndpointService(
            self,
            "EndpointService",
            network_load_balancer_arns=[self.load_balancer.load_balancer_arn],
            acceptance_required=False,
        )
        self.service_id: str = self.endpoint_service.ref
        # The name AWS gives every endpoint service (the resource returns only the id).
        self.service_name: str = cdk.Fn.join(
            ".", ["com.amazonaws.vpce", cdk.Stack.of(self).region, self.service_id]
        )
