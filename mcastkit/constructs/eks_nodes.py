"""Self-managed EKS nodes that each hold a multicast ENI for one pod: an Auto Scaling group per zone."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import Acknowledgment, CfnAutoScalingRollingUpdate, CfnUpdatePolicy, Fn, Validations
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from mcastkit.config.names import pascal
from mcastkit.constructs.cluster import bootstrap_user_data, packed_file
from mcastkit.constructs.eks_cluster import MulticastEksCluster
from mcastkit.eks.network import (
    IPAM_PLUGIN,
    IPAM_PLUGIN_NAME,
    NODE_LABEL,
    NODE_LABEL_VALUE,
    ami_parameter,
    node_config,
)

#: Boot scripts of ``mcastkit/bootstrap``, in order: IGMPv2 on the node (pods created later inherit
#: it; the pods' tuning step covers the others), socket buffers, then the multicast ENI (attached,
#: named, left unmanaged). They run in cloud-init's final stage, before nodeadm starts the kubelet.
EKS_BOOTSTRAP_SCRIPTS: tuple[str, ...] = ("igmpv2.sh", "socket-buffers.sh", "eks-multicast-eni.sh")
CNI_BIN = "/opt/cni/bin"
#: The node's AWS managed policies: joining the cluster, pulling images, the VPC CNI's ENI calls
#: (which the multicast ENI's attachment also uses), and Session Manager for operators.
NODE_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEC2ContainerRegistryReadOnly",
    "AmazonEKS_CNI_Policy",
    "AmazonSSMManagedInstanceCore",
)
#: Between two node replacements of a rolling update: a node boots and joins in a few minutes
#: (inferred; nothing here timed it on EKS).
ROLLING_PAUSE = "PT5M"
#: Auto Scaling's own replacements and rebalancing stay off while CloudFormation replaces nodes.
ROLLING_SUSPEND = ["HealthCheck", "ReplaceUnhealthy", "AZRebalance", "AlarmNotification", "ScheduledActions"]
#: User data is at most 16 KB before base64 (EC2 user guide, "Run commands when you launch an
#: EC2 instance with user data input").
USER_DATA_LIMIT = 16 * 1024


@dataclass(frozen=True)
class NodeZone:
    """Where one zone's nodes run: their own subnet, and the domain's multicast subnet for the ENI."""

    availability_zone: str
    node_subnet: ec2.ISubnet
    multicast_subnet: ec2.ISubnet


class MulticastNodes(Construct):
    """Nodes of ``cluster`` in each zone of ``zones``, ``nodes_per_zone`` each.

    EC2 Auto Scaling creates every interface of a launch template in the instance's own subnet, so
    the multicast ENI cannot come from the launch template: each node creates it at boot in its zone's
    multicast subnet, tagged ``node.k8s.amazonaws.com/no_manage=true``, attaches it at device index 1
    and names it ``mcast0`` (``bootstrap/eks-multicast-eni.sh``). The launch template per zone carries
    that zone's subnet: adding a zone adds a template and a group, and touches no running node.

    Nodes: the EKS-optimized Amazon Linux 2023 AMI (an SSM parameter resolved at each deploy, or
    ``ami``), IMDSv2 with hop limit 1 (pods cannot reach the node's credentials), encrypted gp3 root
    volume, the cluster security group; nodeadm joins them with the max pods of the VPC CNI's
    interfaces, and the multicast label once the boot script holds the ENI (its nodeadm drop-in);
    the IPAM plugin is written to /opt/cni/bin. A new launch
    template version replaces nodes one at a time, starting the new one first, five minutes apart,
    one zone after the other (nodes are not drained first: Kubernetes reschedules their pods).

    Attributes:
        role, instance_profile, access_entry, launch_templates and groups (by zone).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cluster: MulticastEksCluster,
        zones: Sequence[NodeZone],
        multicast_security_group: ec2.ISecurityGroup,
        kubernetes_version: str,
        instance_type: str,
        architecture: str,
        nodes_per_zone: int,
        max_pods: int,
        service_cidr: str,
        ami: str | None = None,
        root_volume_gib: int = 50,
    ) -> None:
        super().__init__(scope, id_)
        if not zones:
            raise ValueError("MulticastNodes needs at least one zone")
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(p) for p in NODE_POLICIES],
            description=f"EKS nodes with a multicast ENI, cluster {cluster.name}",
        )
        self.instance_profile = iam.CfnInstanceProfile(self, "InstanceProfile", roles=[self.role.role_name])
        self.access_entry = eks.CfnAccessEntry(
            self,
            "AccessEntry",
            cluster_name=cluster.cluster.ref,
            principal_arn=self.role.role_arn,
            type="EC2_LINUX",
        )
        image_id = ami or ssm.StringParameter.value_for_typed_string_parameter_v2(
            self, ami_parameter(kubernetes_version, architecture), ssm.ParameterValueType.AWS_EC2_IMAGE_ID
        )
        self.launch_templates: dict[str, ec2.CfnLaunchTemplate] = {}
        self.groups: dict[str, autoscaling.CfnAutoScalingGroup] = {}
        for zone in zones:
            suffix = pascal(zone.availability_zone)
            user_data = self._user_data(
                cluster=cluster,
                service_cidr=service_cidr,
                max_pods=max_pods,
                environment={
                    "MCASTKIT_ENI_SUBNET": zone.multicast_subnet.subnet_id,
                    "MCASTKIT_ENI_SECURITY_GROUP": multicast_security_group.security_group_id,
                    "MCASTKIT_CLUSTER": cluster.name,
                    "MCASTKIT_NODE_LABEL": f"{NODE_LABEL}={NODE_LABEL_VALUE}",
                },
            )
            template = ec2.CfnLaunchTemplate(
                self,
                f"LaunchTemplate{suffix}",
                launch_template_data=ec2.CfnLaunchTemplate.LaunchTemplateDataProperty(
                    image_id=image_id,
                    instance_type=instance_type,
                    iam_instance_profile=ec2.CfnLaunchTemplate.IamInstanceProfileProperty(
                        arn=self.instance_profile.attr_arn
                    ),
                    security_group_ids=[cluster.cluster.attr_cluster_security_group_id],
                    metadata_options=ec2.CfnLaunchTemplate.MetadataOptionsProperty(
                        http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1
                    ),
                    monitoring=ec2.CfnLaunchTemplate.MonitoringProperty(enabled=True),
                    block_device_mappings=[
                        ec2.CfnLaunchTemplate.BlockDeviceMappingProperty(
                            device_name="/dev/xvda",
                            ebs=ec2.CfnLaunchTemplate.EbsProperty(
                                encrypted=True,
                                volume_size=root_volume_gib,
                                volume_type="gp3",
                                delete_on_termination=True,
                            ),
                        )
                    ],
                    user_data=Fn.base64(user_data.render()),
                ),
            )
            group = autoscaling.CfnAutoScalingGroup(
                self,
                f"Group{suffix}",
                min_size=str(nodes_per_zone),
                # One above: a rolling update starts the new node before it stops an old one.
                max_size=str(nodes_per_zone + 1),
                desired_capacity=str(nodes_per_zone),
                vpc_zone_identifier=[zone.node_subnet.subnet_id],
                launch_template=autoscaling.CfnAutoScalingGroup.LaunchTemplateSpecificationProperty(
                    launch_template_id=template.ref, version=template.attr_latest_version_number
                ),
                health_check_type="EC2",
                health_check_grace_period=300,
                tags=[
                    autoscaling.CfnAutoScalingGroup.TagPropertyProperty(
                        key=f"kubernetes.io/cluster/{cluster.name}", value="owned", propagate_at_launch=True
                    ),
                    autoscaling.CfnAutoScalingGroup.TagPropertyProperty(
                        key="Name", value=f"{cluster.name}-multicast-node", propagate_at_launch=True
                    ),
                ],
            )
            group.cfn_options.update_policy = CfnUpdatePolicy(
                auto_scaling_rolling_update=CfnAutoScalingRollingUpdate(
                    max_batch_size=1,
                    min_instances_in_service=nodes_per_zone,
                    # No signal (the nodes have no CloudFormation endpoint): a pause long enough for
                    # a new node to boot and join before the next old one goes.
                    pause_time=ROLLING_PAUSE,
                    suspend_processes=ROLLING_SUSPEND,
                )
            )
            # One zone at a time: a new AMI or user data never takes every zone's nodes at once.
            if self.groups:
                group.add_resource_dependency(list(self.groups.values())[-1])
            # The VPC CNI's configuration (no spare ENI) and the nodes' access entry are in place
            # before the first node boots.
            group.add_resource_dependency(cluster.vpc_cni)
            group.add_resource_dependency(self.access_entry)
            self.launch_templates[zone.availability_zone] = template
            self.groups[zone.availability_zone] = group
        self._acknowledge()

    @staticmethod
    def _user_data(
        *, cluster: MulticastEksCluster, service_cidr: str, max_pods: int, environment: Mapping[str, str]
    ) -> ec2.MultipartUserData:
        user_data = ec2.MultipartUserData()
        user_data.add_part(
            ec2.MultipartBody.from_raw_body(
                content_type="application/node.eks.aws",
                body=node_config(
                    cluster=cluster.name,
                    endpoint=cluster.cluster.attr_endpoint,
                    certificate_authority=cluster.cluster.attr_certificate_authority_data,
                    cidr=service_cidr,
                    max_pods=max_pods,
                ),
            )
        )
        script = bootstrap_user_data(EKS_BOOTSTRAP_SCRIPTS, environment=environment, packed=True)
        script.add_commands(*packed_file(f"{CNI_BIN}/{IPAM_PLUGIN_NAME}", IPAM_PLUGIN.read_bytes()))
        # As text, not in base64 transfer encoding (a third larger): user data is at most 16 KB.
        user_data.add_part(
            ec2.MultipartBody.from_raw_body(content_type=ec2.MultipartBody.SHELL_SCRIPT, body=script.render())
        )
        return user_data

    def _acknowledge(self) -> None:
        for group in self.groups.values():
            Validations.of(group).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-AS3",
                    reason="The groups hold a fixed number of nodes; launches and terminations are in the "
                    "group's activity history and as nodes in Kubernetes. An SNS topic here would have no "
                    "subscriber.",
                )
            )
        Validations.of(self.role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEKSWorkerNodePolicy]",
                reason="What a node needs to join EKS, maintained by AWS.",
            ),
            Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly]",
                reason="Pulling the add-ons', Multus' and mcastkit's images from ECR.",
            ),
            Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEKS_CNI_Policy]",
                reason="The VPC CNI's ENI and address calls with the node's credentials (the EKS default "
                "without IRSA, which a private cluster would need an OIDC provider and STS for); the "
                "node's multicast ENI is created and attached with the same calls.",
            ),
            Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]",
                reason="Session Manager access to nodes that have no SSH and no internet path.",
            ),
        )
