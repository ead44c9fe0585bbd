"""The provider's VPC: explicit multicast subnets, VPC endpoints instead of internet access, flow logs."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network

from aws_cdk import CfnResource, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from mcastkit.config import NodeSubnet, Subnet
from mcastkit.config.names import pascal
from mcastkit.constructs.log_key import allow_cloudwatch_logs

#: What ECS container instances and their tasks call: the ECS control plane, ECR for
#: images, CloudWatch Logs for task logs, Secrets Manager for task secrets.
DEFAULT_INTERFACE_ENDPOINTS: tuple[ec2.InterfaceVpcEndpointAwsService, ...] = (
    ec2.InterfaceVpcEndpointAwsService.ECS,
    ec2.InterfaceVpcEndpointAwsService.ECS_AGENT,
    ec2.InterfaceVpcEndpointAwsService.ECS_TELEMETRY,
    ec2.InterfaceVpcEndpointAwsService.ECR,
    ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
)
#: What EKS nodes call besides (EKS user guide, "Deploy private clusters with limited internet
#: access"): EC2, for the VPC CNI, nodeadm and the nodes' multicast ENIs; ECR and CloudWatch Logs
#: are already there, and the nodes' configuration names the cluster's endpoint (no EKS API call).
EKS_INTERFACE_ENDPOINTS: tuple[ec2.InterfaceVpcEndpointAwsService, ...] = (
    ec2.InterfaceVpcEndpointAwsService.EC2,
    ec2.InterfaceVpcEndpointAwsService.SSM,
    ec2.InterfaceVpcEndpointAwsService.SSM_MESSAGES,
    ec2.InterfaceVpcEndpointAwsService.EC2_MESSAGES,
)


def first_subnet_per_zone(subnets: Sequence[ec2.ISubnet]) -> list[ec2.ISubnet]:
    """The first subnet of each availability zone, in the given order.

    A Transit Gateway VPC attachment and an interface endpoint each take at most one
    subnet per availability zone.
    """
    chosen: dict[str, ec2.ISubnet] = {}
    for subnet in subnets:
        chosen.setdefault(subnet.availability_zone, subnet)
    return list(chosen.values())


class MulticastVpc(Construct):
    """A VPC over pinned availability zones with the configured multicast subnets only.

    Every subnet is private (no internet gateway, no NAT): hosts reach AWS APIs through
    interface endpoints placed in the first subnet of each zone, and ECR image layers
    through an S3 gateway endpoint. Market-data hosts then have no path to the internet
    at all, and nothing needs public subnets the config does not describe. VPC flow logs
    (all traffic) go to a log group encrypted with a customer-managed KMS key.

    Args:
        cidr: the VPC CIDR.
        availability_zones: zone names, pinned so a synth needs no lookup.
        subnets: the multicast subnets (CIDR, zone, domain); order decides which subnet
            of a zone hosts the endpoints.
        node_subnets: subnets of no domain, for EKS nodes and their pods' VPC CNI addresses (not in
            the Transit Gateway attachment; their network ACL is the VPC's default).
        interface_endpoints: AWS services to reach privately (default
            :data:`DEFAULT_INTERFACE_ENDPOINTS`); empty for none.
        s3_gateway_endpoint: add the S3 gateway endpoint ECR needs (default ``True``).
        flow_log_retention: flow log retention (default one year).

    Attributes:
        vpc: the VPC.
        subnets: one ``ec2.Subnet`` per configured subnet, in config order.
        node_subnets: one ``ec2.Subnet`` per node subnet, in config order.
        endpoint_subnets: the first subnet of each zone.
        flow_log_key, flow_log_group, flow_log: flow log resources.
        endpoints: the interface endpoints by service short name.
        endpoint_security_group: the endpoints' security group (HTTPS from ``cidr``).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cidr: IPv4Network,
        availability_zones: Sequence[str],
        subnets: Sequence[Subnet],
        node_subnets: Sequence[NodeSubnet] = (),
        interface_endpoints: Sequence[ec2.InterfaceVpcEndpointAwsService] = DEFAULT_INTERFACE_ENDPOINTS,
        s3_gateway_endpoint: bool = True,
        flow_log_retention: logs.RetentionDays = logs.RetentionDays.ONE_YEAR,
    ) -> None:
        super().__init__(scope, id_)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(str(cidr)),
            availability_zones=list(availability_zones),
            subnet_configuration=[],
            nat_gateways=0,
            enable_dns_hostnames=True,
            enable_dns_support=True,
        )
        self.subnets: list[ec2.ISubnet] = [self._subnet(spec) for spec in subnets]
        self.node_subnets: list[ec2.ISubnet] = [self._subnet(spec) for spec in node_subnets]
        self.endpoint_subnets = first_subnet_per_zone(self.subnets)
        self._add_flow_log(flow_log_retention)
        self._drop_redundant_dependency()
        self.endpoints: dict[str, ec2.InterfaceVpcEndpoint] = {}
        # One security group for every endpoint, open to the VPC's CIDR (given as a
        # literal, so the rule is reviewable in the template).
        self.endpoint_security_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            description="VPC interface endpoints: HTTPS from the VPC",
            allow_all_outbound=False,
        )
        self.endpoint_security_group.add_ingress_rule(
            ec2.Peer.ipv4(str(cidr)), ec2.Port.tcp(443), "HTTPS from hosts and tasks in the VPC"
        )
        for service in interface_endpoints:
            short = service.short_name
            self.endpoints[short] = self.vpc.add_interface_endpoint(
                f"Endpoint{pascal(short)}",
                service=service,
                subnets=ec2.SubnetSelection(subnets=self.endpoint_subnets),
                private_dns_enabled=True,
                open=False,
                security_groups=[self.endpoint_security_group],
            )
        if s3_gateway_endpoint:
            self.vpc.add_gateway_endpoint(
                "EndpointS3",
                service=ec2.GatewayVpcEndpointAwsService.S3,
                subnets=[ec2.SubnetSelection(subnets=[*self.subnets, *self.node_subnets])],
            )

    def _subnet(self, spec: NodeSubnet) -> ec2.ISubnet:
        return ec2.PrivateSubnet(
            self,
            f"Subnet{pascal(str(spec.cidr))}",
            vpc_id=self.vpc.vpc_id,
            availability_zone=spec.availability_zone,
            cidr_block=str(spec.cidr),
            map_public_ip_on_launch=False,
        )

    def _add_flow_log(self, retention: logs.RetentionDays) -> None:
        self.flow_log_key = kms.Key(
            self,
            "FlowLogKey",
            description="Encrypts the multicast VPC's flow logs",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        allow_cloudwatch_logs(self.flow_log_key)
        self.flow_log_group = logs.LogGroup(
            self,
            "FlowLogGroup",
            encryption_key=self.flow_log_key,
            retention=retention,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.flow_log = self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(self.flow_log_group),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )

    def _drop_redundant_dependency(self) -> None:
        """Remove the handler's DependsOn its role from CDK's default-SG custom resource.

        ``restrictDefaultSecurityGroup`` (the default security group loses all rules)
        adds a provider whose handler both references and DependsOn its role; cfn-lint
        warns about the redundant DependsOn (W3005).
        """
        provider = Stack.of(self).node.try_find_child("Custom::VpcRestrictDefaultSGCustomResourceProvider")
        if provider is None:
            return
        handler = provider.node.try_find_child("Handler")
        role = provider.node.try_find_child("Role")
        if isinstance(handler, CfnResource) and isinstance(role, CfnResource):
            handler.remove_resource_dependency(role)
