"""The EKS control plane of the multicast pods: private API, encrypted secrets, logged, access by
access entries, and the VPC CNI add-on configured for nodes that hold an ENI it must not use."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from ipaddress import IPv4Network

from aws_cdk import Acknowledgment, RemovalPolicy, Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

#: Every control-plane log type EKS offers (EKS user guide, "Send control plane logs to CloudWatch Logs").
CONTROL_PLANE_LOGS = ("api", "audit", "authenticator", "controllerManager", "scheduler")
CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
#: The VPC CNI keeps no spare ENI (the default, 1, would attach a third interface to some nodes and
#: not others). It counts the unmanaged multicast ENI against the instance's limit itself
#: (ipamd ``hasRoomForEni`` subtracts unmanaged ENIs), so MAX_ENI stays unset: lowering it too would
#: take the multicast ENI off twice.
VPC_CNI_CONFIGURATION = {"env": {"WARM_ENI_TARGET": "0"}}


class MulticastEksCluster(Construct):
    """An EKS cluster in the provider VPC.

    The API endpoint is private (public too only with ``public_access_cidrs``), reachable on 443 from
    the VPC and ``admin_cidrs``; Kubernetes secrets are envelope-encrypted with a customer-managed
    key; every control-plane log goes to a log group created here (encrypted, retained). Access is
    by EKS access entries only (authentication mode API: no aws-auth ConfigMap), and CloudFormation's
    own role gets no cluster-admin: ``admin_roles`` do. The self-managed add-ons EKS installs stay
    (kube-proxy, CoreDNS); the VPC CNI becomes an EKS add-on with :data:`VPC_CNI_CONFIGURATION`.

    Args:
        name: the cluster name (create-only: a change replaces the cluster).
        version: the Kubernetes version.
        vpc, subnets: the VPC and the subnets EKS places its control-plane interfaces in (at least
            two zones; the nodes' subnets).
        vpc_cidr: HTTPS to the API from here (nodes, pods, hosts in the VPC).
        service_cidr: the Kubernetes service range (create-only), outside the VPC.
        admin_roles: IAM role ARNs given the cluster-admin access policy.
        admin_cidrs: networks outside the VPC kubectl runs from (HTTPS to the private endpoint).
        public_access_cidrs: empty for a private endpoint; else the CIDRs the public endpoint admits.
        encryption_key: the key of the control-plane log group.

    Attributes:
        name (the literal; ``cluster.ref`` where a reference must wait for the cluster),
        cluster (``CfnCluster``), role, secrets_key, log_group, security_group, vpc_cni (``CfnAddon``).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        version: str,
        vpc: ec2.IVpc,
        subnets: Sequence[ec2.ISubnet],
        vpc_cidr: IPv4Network,
        service_cidr: str,
        admin_roles: Sequence[str],
        admin_cidrs: Sequence[IPv4Network] = (),
        public_access_cidrs: Sequence[IPv4Network] = (),
        encryption_key: kms.IKey,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_YEAR,
    ) -> None:
        super().__init__(scope, id_)
        self.name = name
        if len({s.availability_zone for s in subnets}) < 2:
            raise ValueError("an EKS cluster needs subnets in at least two availability zones")
        if not admin_roles:
            raise ValueError("give at least one admin role: nothing else can reach the cluster's API")
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("eks.amazonaws.com"),
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("AmazonEKSClusterPolicy")],
            description=f"EKS control plane of {name}",
        )
        self.secrets_key = kms.Key(
            self,
            "SecretsKey",
            description=f"Envelope encryption of the Kubernetes secrets of {name}",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.secrets_key.grant(self.role, "kms:Encrypt", "kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant")
        # EKS writes to /aws/eks/<name>/cluster; created here first, it is encrypted and kept.
        self.log_group = logs.LogGroup(
            self,
            "ControlPlaneLogs",
            log_group_name=f"/aws/eks/{name}/cluster",
            encryption_key=encryption_key,
            retention=log_retention,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "ApiSecurityGroup",
            vpc=vpc,
            description=f"Kubernetes API of {name}: HTTPS from the VPC and the admin networks",
            allow_all_outbound=False,
        )
        for cidr in (vpc_cidr, *admin_cidrs):
            self.security_group.add_ingress_rule(
                ec2.Peer.ipv4(str(cidr)), ec2.Port.tcp(443), f"Kubernetes API from {cidr}"
            )
        public = bool(public_access_cidrs)
        self.cluster = eks.CfnCluster(
            self,
            "Cluster",
            name=name,
            version=version,
            role_arn=self.role.role_arn,
            resources_vpc_config=eks.CfnCluster.ResourcesVpcConfigProperty(
                subnet_ids=[s.subnet_id for s in subnets],
                security_group_ids=[self.security_group.security_group_id],
                endpoint_private_access=True,
                endpoint_public_access=public,
                public_access_cidrs=[str(c) for c in public_access_cidrs] if public else None,
            ),
            kubernetes_network_config=eks.CfnCluster.KubernetesNetworkConfigProperty(
                ip_family="ipv4", service_ipv4_cidr=service_cidr
            ),
            encryption_config=[
                eks.CfnCluster.EncryptionConfigProperty(
                    provider=eks.CfnCluster.ProviderProperty(key_arn=self.secrets_key.key_arn),
                    resources=["secrets"],
                )
            ],
            logging=eks.CfnCluster.LoggingProperty(
                cluster_logging=eks.CfnCluster.ClusterLoggingProperty(
                    enabled_types=[
                        eks.CfnCluster.LoggingTypeConfigProperty(type=t) for t in CONTROL_PLANE_LOGS
                    ]
                )
            ),
            access_config=eks.CfnCluster.AccessConfigProperty(
                authentication_mode="API", bootstrap_cluster_creator_admin_permissions=False
            ),
            bootstrap_self_managed_addons=True,
        )
        self.cluster.node.add_dependency(self.log_group)
        # EKS checks at creation that the role may use the secrets key: the grant (the role's
        # default policy) must exist first; the role itself is a reference already.
        grant = self.role.node.try_find_child("DefaultPolicy")
        if grant is not None:
            self.cluster.node.add_dependency(grant)
        for role in admin_roles:
            # Named by the role, not its place in the list: the principal is create-only, so an id
            # by position would make removing the first role replace the second's entry, which
            # EKS refuses while the old one (the same principal) still exists.
            eks.CfnAccessEntry(
                self,
                f"Admin{hashlib.sha256(role.encode()).hexdigest()[:12]}",
                cluster_name=self.cluster.ref,
                principal_arn=role,
                type="STANDARD",
                access_policies=[
                    eks.CfnAccessEntry.AccessPolicyProperty(
                        policy_arn=CLUSTER_ADMIN_POLICY,
                        access_scope=eks.CfnAccessEntry.AccessScopeProperty(type="cluster"),
                    )
                ],
            )
        self.vpc_cni = eks.CfnAddon(
            self,
            "VpcCni",
            addon_name="vpc-cni",
            cluster_name=self.cluster.ref,
            # The add-on takes over the aws-node DaemonSet EKS installed at creation.
            resolve_conflicts="OVERWRITE",
            configuration_values=json.dumps(VPC_CNI_CONFIGURATION),
        )
        self._acknowledge(public)

    def _acknowledge(self, public: bool) -> None:
        Validations.of(self.role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEKSClusterPolicy]",
                reason="The EKS service role's own policy, maintained by AWS with the control plane's needs.",
            )
        )
        if public:
            Validations.of(self.cluster).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-EKS1",
                    reason="eks.endpoint: public-and-private was chosen in the config, and the public "
                    "endpoint admits only eks.public_access_cidrs (validation refuses an empty list).",
                )
            )
