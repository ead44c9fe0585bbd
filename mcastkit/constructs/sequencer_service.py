"""A stream's sequencer as an ECS service: raw groups in, MoldUDP64 out, a journal on EFS, replay
through the stream's load balancer.

It runs ``mcastkit stream sequencer`` on the IGMPv2 EC2 cluster in ``awsvpc`` mode, as the relay
and the probes do (Fargate cannot do multicast; the task ENI in the domain's subnet joins and sends
with the members' security group), from the same tools image with the same hardening.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from mcastkit.config import Domain, Stream
from mcastkit.config.names import NFS_PORT
from mcastkit.constructs.relay_service import (
    DEFAULT_STOP_TIMEOUT,
    TASK_INTERFACE,
    add_tools_container,
    capacity_strategy,
    tools_image,
    wait_for_capacity_providers,
)
from mcastkit.constructs.stream_journal import StreamJournal

#: Where the journal's access point is mounted in the container (``--journal``).
JOURNAL_MOUNT = "/journal"
JOURNAL_VOLUME = "journal"
#: How long the load balancer lets a stopping sequencer's replay sessions finish (they reconnect).
DEREGISTRATION_DELAY = cdk.Duration.seconds(10)


def sequencer_command(stream: Stream, domain: Domain, metrics_service: str | None = None) -> list[str]:
    """The container's command (after the image's ``mcastkit`` entry point)."""
    inputs = [arg for name in stream.inputs for arg in ("--in", str(domain.group(name).group_port))]
    return [
        "stream",
        "sequencer",
        *inputs,
        "--interface",
        TASK_INTERFACE,
        "--out",
        str(domain.group(stream.output).group_port),
        "--session",
        stream.name,
        "--journal",
        JOURNAL_MOUNT,
        "--retransmit",
        f"0.0.0.0:{stream.retransmit_port}",
        "--replay",
        f"0.0.0.0:{stream.replay_port}",
        "--fsync",
        stream.fsync.value,
        "--ttl",
        str(stream.ttl),
        *(["--emf", metrics_service] if metrics_service else []),
    ]


def _tcp_connect_command(port: int) -> list[str]:
    # A connect-then-close, which the replay service takes as nothing (no login).
    probe = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=3).close()"
    return ["CMD", "python", "-c", probe]


class SequencerService(Construct):
    """The sequencer of ``stream`` as an ECS service, with its journal mounted and its replay port
    behind the stream's load balancer.

    **Exactly one sequencer, never two.** Desired count 1, and a deployment stops the old task before
    it starts the new one (minimum healthy 0 %, maximum 100 %): two sequencers would append to one
    journal and number the same datagrams twice. The stream pauses for as long as the swap takes: the
    raw datagrams published meanwhile are not numbered, and the new sequencer continues the
    numbering from the journal (receivers see a pause, no gap); the relay, whose feed must not stop,
    overlaps instead. (That ECS never runs the new task while the old one is still stopping is
    inferred from how the maximum percent counts tasks, not documented as a guarantee; the
    sequencer also locks its journal, so a second one exits.)

    Security groups, least privilege: the members' (IGMP, UDP from the domain's ``source_cidrs`` to
    its groups, UDP to the groups) carries the multicast in and out; this construct's own admits the
    replay port from the load balancer's security group only and UDP to the retransmit port from
    the VPC's CIDR only (re-requests are answered unicast, so only senders inside the VPC can be
    answered), and sends only NFS, to the VPC's CIDR (where EFS places the mount targets); the
    journal's security group admits NFS from this one only.

    The journal is mounted through its access point with TLS and IAM authorization: the task role
    may mount and write the file system through that access point only. (The ECS agent mounts an
    ``awsvpc`` task's EFS volume inside the task's network namespace, so NFS leaves through the task
    ENI and its security group: inferred from the agent's and efs-utils' sources, not observed.)

    Args:
        cluster: the IGMPv2 ECS cluster with EC2 capacity.
        vpc: the VPC.
        vpc_cidr: the VPC's CIDR, the only source of re-requests.
        subnets: the stream domain's multicast subnets.
        stream: the stream's config; domain: the config of ``stream.domain``.
        members_security_group: the security group with the multicast member rules.
        journal: the stream's :class:`StreamJournal`.
        load_balancer: the stream's load balancer (:attr:`ReplayEndpoint.load_balancer`); the
            listener on the replay port and its target group are made here, with the service.
        load_balancer_security_group: the load balancer's security group.
        capacity_provider: default none, the EC2 launch type; give the cluster's capacity provider.
        image: default the tools image built from the repository's ``Dockerfile``.
        stop_timeout: default 30 s, between SIGTERM (the sequencer flushes its journal) and SIGKILL.
        log_group: default a new log group, retained, with ``log_retention`` (default one month),
            encrypted with ``encryption_key`` (default none: the CloudWatch Logs service key).
        metrics_service: default none; the CloudWatch ``Service`` dimension of the metric
            lines it prints (``--emf``), which the log group's awslogs driver publishes.

    Attributes:
        security_group, log_group, task_definition, container, target_group, listener, service.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cluster: ecs.ICluster,
        vpc: ec2.IVpc,
        vpc_cidr: IPv4Network,
        subnets: Sequence[ec2.ISubnet],
        stream: Stream,
        domain: Domain,
        members_security_group: ec2.ISecurityGroup,
        journal: StreamJournal,
        load_balancer: elbv2.INetworkLoadBalancer,
        load_balancer_security_group: ec2.ISecurityGroup,
        capacity_provider: ecs.AsgCapacityProvider | None = None,
        image: ecs.ContainerImage | None = None,
        stop_timeout: cdk.Duration = DEFAULT_STOP_TIMEOUT,
        log_group: logs.ILogGroup | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        encryption_key: kms.IKey | None = None,
        metrics_service: str | None = None,
    ) -> None:
        super().__init__(scope, id_)
        if stream.domain != domain.name:
            raise ValueError(f"stream.domain is {stream.domain!r} but the domain given is {domain.name!r}")
        if not subnets:
            raise ValueError(f"no multicast subnet given for the sequencer of stream {stream.name!r}")
        known = {g.name for g in domain.groups}
        missing = [g for g in (*stream.inputs, stream.output) if g not in known]
        if missing:
            raise ValueError(f"stream {stream.name!r}: {missing} are not groups of domain {domain.name!r}")

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description=f"mcastkit sequencer of stream {stream.name}: replay from its load balancer, "
            "re-requests from the VPC, NFS to its journal",
            allow_all_outbound=False,
        )
        self.security_group.add_ingress_rule(
            load_balancer_security_group,
            ec2.Port.tcp(stream.replay_port),
            f"replay of {stream.name} from its load balancer",
        )
        self.security_group.add_ingress_rule(
            ec2.Peer.ipv4(str(vpc_cidr)),
            ec2.Port.udp(stream.retransmit_port),
            f"MoldUDP64 re-requests of {stream.name} from the VPC",
        )
        # Egress inline, to a CIDR (the mount targets' addresses are EFS's to choose): a group whose only
        # egress rules are resources of their own, as rules naming a group are, keeps EC2's default
        # allow-all egress. The journal's group admits NFS from this group only.
        self.security_group.add_egress_rule(
            ec2.Peer.ipv4(str(vpc_cidr)), ec2.Port.tcp(NFS_PORT), f"NFS to the journal of {stream.name}"
        )
        # Made here, in this stack (the journal's stack is deployed first), as a resource the service
        # can wait for: a task started before it would time out mounting the journal and count
        # against the circuit breaker.
        self.journal_rule = ec2.CfnSecurityGroupIngress(
            self,
            "JournalNfs",
            group_id=journal.security_group.security_group_id,
            source_security_group_id=self.security_group.security_group_id,
            ip_protocol="tcp",
            from_port=NFS_PORT,
            to_port=NFS_PORT,
            description=f"NFS from the sequencer of {stream.name}",
        )

        self.log_group = log_group or logs.LogGroup(
            self,
            "LogGroup",
            retention=log_retention,
            removal_policy=cdk.RemovalPolicy.RETAIN,
            encryption_key=encryption_key,
        )
        self.task_definition = ecs.Ec2TaskDefinition(
            self, "TaskDefinition", network_mode=ecs.NetworkMode.AWS_VPC
        )
        self.task_definition.add_volume(
            name=JOURNAL_VOLUME,
            efs_volume_configuration=ecs.EfsVolumeConfiguration(
                file_system_id=journal.file_system_id,
                transit_encryption="ENABLED",
                authorization_config=ecs.AuthorizationConfig(
                    access_point_id=journal.access_point_id, iam="ENABLED"
                ),
            ),
        )
        self.task_definition.add_to_task_role_policy(
            iam.PolicyStatement(
                actions=["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
                resources=[journal.file_system_arn],
                conditions={"StringEquals": {"elasticfilesystem:AccessPointArn": journal.access_point_arn}},
            )
        )
        self.container = add_tools_container(
            self.task_definition,
            "Sequencer",
            image=image or tools_image(),
            command=sequencer_command(stream, domain, metrics_service),
            log_group=self.log_group,
            cpu=stream.cpu,
            memory_mib=stream.memory_mib,
            stop_timeout=stop_timeout,
            health_check=ecs.HealthCheck(
                command=_tcp_connect_command(stream.replay_port),
                interval=cdk.Duration.seconds(10),
                timeout=cdk.Duration.seconds(5),
                retries=3,
                start_period=cdk.Duration.seconds(30),
            ),
        )
        self.container.add_mount_points(
            ecs.MountPoint(container_path=JOURNAL_MOUNT, source_volume=JOURNAL_VOLUME, read_only=False)
        )
        self.container.add_port_mappings(
            ecs.PortMapping(container_port=stream.replay_port, protocol=ecs.Protocol.TCP, name="replay"),
            ecs.PortMapping(
                container_port=stream.retransmit_port, protocol=ecs.Protocol.UDP, name="retransmit"
            ),
        )

        self.target_group = elbv2.NetworkTargetGroup(
            self,
            "TargetGroup",
            vpc=vpc,
            port=stream.replay_port,
            protocol=elbv2.Protocol.TCP,
            target_type=elbv2.TargetType.IP,
            deregistration_delay=DEREGISTRATION_DELAY,
            connection_termination=True,
            health_check=elbv2.HealthCheck(
                protocol=elbv2.Protocol.TCP,
                interval=cdk.Duration.seconds(10),
                healthy_threshold_count=2,
                unhealthy_threshold_count=2,
            ),
        )
        self.listener = elbv2.NetworkListener(
            self,
            "Listener",
            load_balancer=load_balancer,
            port=stream.replay_port,
            protocol=elbv2.Protocol.TCP,
            default_target_groups=[self.target_group],
        )
        self.service = ecs.Ec2Service(
            self,
            "Service",
            cluster=cluster,
            task_definition=self.task_definition,
            desired_count=1,
            vpc_subnets=ec2.SubnetSelection(subnets=list(subnets)),
            security_groups=[self.security_group, members_security_group],
            assign_public_ip=False,
            capacity_provider_strategies=capacity_strategy(capacity_provider),
            # One writer per journal: stop the old sequencer before starting the new one.
            min_healthy_percent=0,
            max_healthy_percent=100,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            health_check_grace_period=cdk.Duration.seconds(60),
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
            enable_ecs_managed_tags=True,
        )
        self.service.attach_to_network_target_group(self.target_group)
        self.service.node.add_dependency(self.journal_rule)
        if capacity_provider is not None:
            wait_for_capacity_providers(self.service, cluster)
