"""Probe sender and receivers as ECS services: proof that a domain delivers multicast.

The ECS multicast sample proves delivery with an iperf sender and receiver pair; this is
the same pair running ``mcastkit probe send`` and ``mcastkit probe recv`` for one group
of the domain, so every receiver reports loss, duplicates, reordering and latency, once
a minute, for as long as the services run.
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from mcastkit.config import Domain, Group, Probe
from mcastkit.constructs.relay_service import (
    TASK_INTERFACE,
    add_tools_container,
    capacity_strategy,
    tools_image,
    wait_for_capacity_providers,
)
from mcastkit.monitoring import emf
from mcastkit.probe.sizing import MEMORY_MIB, receiver_memory_mib

#: Seconds per receiver report, by default; the shortest allowed.
#: The alarms judge one report a minute per receiver (emf.EVERY_SECONDS).
REPORT_SECONDS = int(emf.EVERY_SECONDS)
MIN_REPORT_SECONDS = 1


def group_of(domain: Domain, name: str) -> Group:
    """The group ``name`` of ``domain``; a ``ValueError`` naming both when it is not there."""
    for group in domain.groups:
        if group.name == name:
            return group
    known = [g.name for g in domain.groups]
    raise ValueError(f"probe.group: {name!r} is not a group of domain {domain.name!r} {known}")


class ProbeTasks(Construct):
    """A probe sender and ``probe.receivers`` receivers of ``probe.group`` as ECS services.

    Both run on the IGMPv2 EC2 cluster in ``awsvpc`` mode, in the domain's multicast
    subnets with the members security group, from the tools image with the same
    hardening as the relay. The sender sends without end (``probe send --count 0``);
    each receiver follows the stream (``probe recv --count 0``) and writes one JSON line
    per ``report_seconds`` to the log group: datagrams received, lost, duplicated and
    reordered in that interval, latency percentiles, and ``"ok": false`` when it heard
    nothing or lost any. A replaced sender starts a new stream, which the receivers
    follow (counted in ``restarts``); the ECS agent restarts a container that exits.

    Args:
        cluster: the IGMPv2 ECS cluster with EC2 capacity.
        subnets: the multicast subnets of ``probe.domain``.
        probe: the region's probe config (domain, group, receivers, rate).
        domain: the config of ``probe.domain``.
        members_security_group: the security group with the multicast member rules: it
            admits UDP to the group from the domain's source CIDRs, which must include
            these subnets for the sender to be heard.
        capacity_provider: default none, the EC2 launch type; give the cluster's capacity
            provider so managed scaling makes room for the task ENIs.
        image: default the tools image built from the repository's ``Dockerfile``.
        report_seconds: default 60; seconds per receiver report (at least 1).
        size: default 64; probe datagram payload bytes.
        ttl: default 8, as the relay's default.
        log_group: default a new log group, deleted with the stack (probe reports are
            diagnostics), with ``log_retention`` (default two weeks), encrypted with
            ``encryption_key`` (default none: the CloudWatch Logs service key).
        metrics_service: default none; the CloudWatch ``Service`` dimension of the metric
            lines it prints (``--emf``), which the log group's awslogs driver publishes.

    Attributes:
        group, log_group, receiver_task_definition, receiver_container, receiver_service,
        sender_task_definition, sender_container, sender_service.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cluster: ecs.ICluster,
        subnets: Sequence[ec2.ISubnet],
        probe: Probe,
        domain: Domain,
        members_security_group: ec2.ISecurityGroup,
        capacity_provider: ecs.AsgCapacityProvider | None = None,
        image: ecs.ContainerImage | None = None,
        report_seconds: float = REPORT_SECONDS,
        size: int = 64,
        ttl: int = 8,
        log_group: logs.ILogGroup | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.TWO_WEEKS,
        encryption_key: kms.IKey | None = None,
        metrics_service: str | None = None,
    ) -> None:
        super().__init__(scope, id_)
        if probe.domain != domain.name:
            raise ValueError(f"probe.domain is {probe.domain!r} but the domain given is {domain.name!r}")
        if not subnets:
            raise ValueError(f"no multicast subnet given for the probes of domain {domain.name!r}")
        if report_seconds < MIN_REPORT_SECONDS:
            raise ValueError(f"report_seconds {report_seconds} is below {MIN_REPORT_SECONDS}")
        self.group = group_of(domain, probe.group)
        image = image or tools_image()
        target = str(self.group.group_port)

        self.log_group = log_group or logs.LogGroup(
            self,
            "LogGroup",
            retention=log_retention,
            removal_policy=cdk.RemovalPolicy.DESTROY,
            encryption_key=encryption_key,
        )

        def task(
            id_: str, command: list[str], memory_mib: int
        ) -> tuple[ecs.Ec2TaskDefinition, ecs.ContainerDefinition]:
            task_definition = ecs.Ec2TaskDefinition(
                self, f"{id_}TaskDefinition", network_mode=ecs.NetworkMode.AWS_VPC
            )
            container = add_tools_container(
                task_definition,
                id_,
                image=image,
                command=command,
                log_group=self.log_group,
                cpu=256,
                memory_mib=memory_mib,
                stop_timeout=cdk.Duration.seconds(10),
                restart_after_exit=True,
            )
            return task_definition, container

        receive = ["probe", "recv", "--group", target, "--interface", TASK_INTERFACE]
        receive += ["--count", "0", "--report-every", str(report_seconds), "--json"]
        if metrics_service:
            receive += ["--emf", metrics_service]
        self.receiver_task_definition, self.receiver_container = task(
            "Receiver", receive, receiver_memory_mib(probe.rate, report_seconds)
        )
        send = ["probe", "send", "--group", target, "--interface", TASK_INTERFACE, "--ttl", str(ttl)]
        send += ["--rate", str(probe.rate), "--count", "0", "--size", str(size), "--json"]
        self.sender_task_definition, self.sender_container = task("Sender", send, MEMORY_MIB)

        def service(id_: str, task_definition: ecs.TaskDefinition, desired_count: int) -> ecs.Ec2Service:
            created = ecs.Ec2Service(
                self,
                id_,
                cluster=cluster,
                task_definition=task_definition,
                desired_count=desired_count,
                vpc_subnets=ec2.SubnetSelection(subnets=list(subnets)),
                security_groups=[members_security_group],
                assign_public_ip=False,
                capacity_provider_strategies=capacity_strategy(capacity_provider),
                # Receivers on different hosts and zones prove delivery across the domain.
                placement_strategies=[
                    ecs.PlacementStrategy.spread_across(ecs.BuiltInAttributes.AVAILABILITY_ZONE),
                    ecs.PlacementStrategy.spread_across_instances(),
                ],
                # Probes need no overlap on deployment: stop first, spend no spare ENIs.
                min_healthy_percent=0,
                max_healthy_percent=100,
                circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
                propagate_tags=ecs.PropagatedTagSource.SERVICE,
                enable_ecs_managed_tags=True,
            )
            if capacity_provider is not None:
                wait_for_capacity_providers(created, cluster)
            return created

        self.receiver_service = service("ReceiverService", self.receiver_task_definition, probe.receivers)
        self.sender_service = service("SenderService", self.sender_task_definition, 1)
        self.sender_service.node.add_dependency(self.receiver_service)
