"""An ECS cluster on EC2 whose hosts speak IGMPv2 (Fargate cannot do multicast)."""

from __future__ import annotations

import base64
import gzip
import posixpath
from collections.abc import Mapping, Sequence
from pathlib import Path

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

#: mcastkit/bootstrap, found from this file so a synth works from any working directory.
BOOTSTRAP_DIR = Path(__file__).resolve().parent.parent / "bootstrap"
#: Scripts run at boot, in order: force IGMPv2 first, then configure the ECS agent.
DEFAULT_BOOTSTRAP_SCRIPTS: tuple[str, ...] = ("igmpv2.sh", "socket-buffers.sh", "ecs-agent.sh")
#: Where user data writes the scripts on the host, so an operator can re-run them.
HOST_BOOTSTRAP_DIR = "/opt/mcastkit/bootstrap"


def bootstrap_user_data(
    scripts: Sequence[str],
    *,
    directory: Path = BOOTSTRAP_DIR,
    environment: Mapping[str, str] | None = None,
    packed: bool = False,
) -> ec2.UserData:
    """User data that writes each bootstrap script to the host and runs it, with ``environment``
    exported (values may be tokens; they must not need shell quoting). ``packed`` writes each
    script gzipped in base64 (a third of the size, comments kept) where user data's 16 KB are short.

    Each script runs in its own ``bash`` so its ``set -euo pipefail`` and variables stay
    its own; a failing script stops the boot sequence and the instance never joins the
    cluster. The ASG's EC2 health check does not see that (the instance runs): managed
    scaling adds hosts for the pending tasks up to ``max``, and the ECS services wait.
    """
    user_data = ec2.UserData.for_linux()
    user_data.add_commands("set -euo pipefail", f"mkdir -p {HOST_BOOTSTRAP_DIR}")
    for key, value in (environment or {}).items():
        user_data.add_commands(f"export {key}={value}")
    for name in scripts:
        path = directory / name
        try:
            body = path.read_text(encoding="utf-8")
        except OSError as err:
            raise ValueError(f"bootstrap script {path}: {err.strerror}") from None
        target = f"{HOST_BOOTSTRAP_DIR}/{name}"
        if packed:
            user_data.add_commands(*packed_file(target, body.encode()))
        else:
            delimiter = "MCASTKIT_SCRIPT_END"
            if delimiter in body:
                raise ValueError(f"bootstrap script {path} contains the heredoc delimiter {delimiter}")
            user_data.add_commands(
                f"cat > {target} <<'{delimiter}'\n{body.rstrip()}\n{delimiter}", f"chmod 0755 {target}"
            )
        user_data.add_commands(f"bash {target}")
    return user_data


def packed_file(target: str, data: bytes, *, mode: str = "0755") -> list[str]:
    """Shell commands that write ``data`` to ``target`` with ``mode`` from a gzip in base64
    (deterministic: the same bytes give the same user data), in place at once (rename)."""
    encoded = base64.b64encode(gzip.compress(data, mtime=0)).decode()
    return [
        f"mkdir -p {posixpath.dirname(target)}",
        f"base64 -d <<'MCASTKIT_PACKED_END' | gunzip > {target}.new\n{encoded}\nMCASTKIT_PACKED_END",
        f"chmod {mode} {target}.new",
        f"mv {target}.new {target}",
    ]


def _machine_image(region: str, architecture: str, ami: str | None) -> ec2.IMachineImage:
    """A pinned AMI, or the latest ECS-optimized Amazon Linux 2023 for the architecture.

    The latest is an SSM parameter resolved at every deploy: when AWS publishes a new AMI, the
    next deploy makes a new launch template version and the rolling update replaces every host
    (and moves its tasks). Pinning ``capacity.ami`` makes that a deliberate change.
    """
    if ami:
        return ec2.MachineImage.generic_linux({region: ami})
    hardware = ecs.AmiHardwareType.ARM if architecture == "arm64" else ecs.AmiHardwareType.STANDARD
    return ecs.EcsOptimizedImage.amazon_linux2023(hardware)


class Igmpv2Cluster(Construct):
    """ECS cluster on EC2 capacity whose hosts force IGMPv2 and run multicast tasks.

    Hosts come from a launch template (never a launch configuration) with IMDSv2
    required (hop limit 1, so awsvpc tasks cannot borrow the host's credentials),
    an encrypted gp3 root volume, no public IP and the given members security group.
    The ECS-optimized Amazon Linux 2023 AMI id is an SSM parameter CloudFormation
    resolves at deploy time: a synth makes no lookups. User data runs the scripts of
    ``mcastkit/bootstrap`` (IGMPv2 on every interface, ECS agent settings); the ECS
    capacity provider then appends ``ECS_CLUSTER`` to ``/etc/ecs/ecs.config``.

    Args:
        vpc: the VPC the hosts run in.
        subnets: subnets for the hosts (and, usually, their awsvpc tasks).
        security_group: the members security group (see :class:`MemberRules`).
        instance_type: a Nitro instance type (default ``c6in.large``).
        architecture: ``x86_64`` (default) or ``arm64``: which ECS-optimized AMI the hosts run.
        ami: a pinned AMI id (default ``None``: the latest ECS-optimized AL2023, resolved at deploy).
        min_capacity, max_capacity: Auto Scaling bounds (default 1 and 2).
        root_volume_gib: root EBS volume size (default 30, the AMI's minimum).
        log_retention: retention of the cluster's log group (default one month).
        encryption_key: the key of the cluster's log group (default none: the service key).
        bootstrap_scripts: file names in ``mcastkit/bootstrap`` run at boot, in order
            (default ``igmpv2.sh``, ``socket-buffers.sh``, ``ecs-agent.sh``).

    Attributes:
        cluster, launch_template, instance_role, auto_scaling_group, capacity_provider,
        log_group: the resources created; tasks log to ``log_group``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        vpc: ec2.IVpc,
        subnets: Sequence[ec2.ISubnet],
        security_group: ec2.ISecurityGroup,
        instance_type: str = "c6in.large",
        architecture: str = "x86_64",
        ami: str | None = None,
        min_capacity: int = 1,
        max_capacity: int = 2,
        root_volume_gib: int = 30,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        encryption_key: kms.IKey | None = None,
        bootstrap_scripts: Sequence[str] = DEFAULT_BOOTSTRAP_SCRIPTS,
    ) -> None:
        super().__init__(scope, id_)
        if not subnets:
            raise ValueError("Igmpv2Cluster needs at least one subnet")
        if min_capacity > max_capacity:
            raise ValueError(f"min_capacity {min_capacity} is greater than max_capacity {max_capacity}")
        self.cluster = ecs.Cluster(
            self, "Cluster", vpc=vpc, container_insights_v2=ecs.ContainerInsights.ENABLED
        )
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            retention=log_retention,
            removal_policy=RemovalPolicy.RETAIN,
            encryption_key=encryption_key,
        )
        # The ECS capacity provider adds the agent's own permissions (register, poll,
        # telemetry) to this role; nothing else is granted to the hosts.
        self.instance_role = iam.Role(
            self,
            "InstanceRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="ECS container instances of the multicast cluster",
        )
        self.launch_template = ec2.LaunchTemplate(
            self,
            "LaunchTemplate",
            instance_type=ec2.InstanceType(instance_type),
            machine_image=_machine_image(Stack.of(self).region, architecture, ami),
            role=self.instance_role,
            security_group=security_group,
            user_data=bootstrap_user_data(bootstrap_scripts),
            require_imdsv2=True,
            http_put_response_hop_limit=1,
            associate_public_ip_address=False,
            detailed_monitoring=True,
            block_devices=[
                ec2.BlockDevice(
                    device_name="/dev/xvda",
                    volume=ec2.BlockDeviceVolume.ebs(
                        root_volume_gib,
                        encrypted=True,
                        volume_type=ec2.EbsDeviceVolumeType.GP3,
                        delete_on_termination=True,
                    ),
                )
            ],
        )
        self.auto_scaling_group = autoscaling.AutoScalingGroup(
            self,
            "AutoScalingGroup",
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnets=list(subnets)),
            launch_template=self.launch_template,
            min_capacity=min_capacity,
            max_capacity=max_capacity,
            # A new launch template version (new user data, or a new AMI: the latest is resolved at
            # every deploy unless pinned) replaces hosts one at a time, starting the new one first
            # when max leaves room, so min hosts stay in service and ECS moves each task before
            # its host goes (managed draining; services start the new task before stopping the old).
            update_policy=autoscaling.UpdatePolicy.rolling_update(
                max_batch_size=1, min_instances_in_service=min(min_capacity, max_capacity - 1)
            ),
            health_checks=autoscaling.HealthChecks.ec2(grace_period=Duration.minutes(5)),
            # The HostsMissing alarm reads it (group metrics are off unless asked for; free).
            group_metrics=[autoscaling.GroupMetrics(autoscaling.GroupMetric.IN_SERVICE_INSTANCES)],
        )
        self.capacity_provider = ecs.AsgCapacityProvider(
            self,
            "CapacityProvider",
            auto_scaling_group=self.auto_scaling_group,
            enable_managed_draining=True,
            # Scale-in protection would block `cdk destroy` and rolling updates; managed
            # draining already moves tasks off a host before it terminates.
            enable_managed_termination_protection=False,
        )
        self.cluster.add_asg_capacity_provider(self.capacity_provider)
        self._acknowledge_findings()
        self.cluster.add_default_capacity_provider_strategy(
            [ecs.CapacityProviderStrategy(capacity_provider=self.capacity_provider.capacity_provider_name)]
        )

    def _acknowledge_findings(self) -> None:
        Validations.of(self.instance_role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Action::ecs:Submit*]",
                reason="The ECS agent's state-change calls (SubmitTaskStateChange, "
                "SubmitContainerStateChange, SubmitAttachmentStateChanges) as CDK grants them, "
                "scoped to this cluster's ARN.",
            ),
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="ecr:GetAuthorizationToken and ecs:DiscoverPollEndpoint have no resource-level "
                "permissions; ecs:Poll and StartTelemetrySession are conditioned on this cluster; "
                "logs:CreateLogStream/PutLogEvents are what the awslogs driver on EC2 uses, with the "
                "instance's credentials, for log groups that task definitions choose.",
            ),
        )
        Validations.of(self.auto_scaling_group).acknowledge(
            Acknowledgment(
                id="AwsSolutions-AS3",
                reason="The ECS capacity provider drives scaling; its events are in the ASG activity "
                "history, ECS service events and Container Insights. An SNS topic here would have "
                "no subscriber.",
            )
        )
