"""Probe sender and receivers as ECS services: proof that a domain delivers multicast.

The ECS multicast sample proves delivery with an iperf sender and receiver pair; this is
the same pair running ``mcastkit probe send`` and ``mcastkit probe recv`` for one group
of the domain, so every receiver reports loss, duplicates, reordering and latency.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs
from constructs import Construct

from mcastkit import config
from mcastkit.constructs.relay_service import (
    TASK_INTERFACE,
    add_tools_container,
    capacity_strategy,
    tools_image,
    wait_for_capacity_providers,
)

#: ``probe recv`` keeps about 9 bytes per expected datagram (seen map + latency sample);
#: the limit allows twice that on top of the interpreter.
RECEIVER_BASE_MIB = 128
RECEIVER_BYTES_PER_DATAGRAM = 18
#: A receiver ends a round this long after the sender's last datagram...
RECEIVER_IDLE_SECONDS = 5
#: ...and the restarted sender waits this long before the next round, so every receiver
#: has restarted and joined before sequence number 0 of the new stream.
SENDER_START_DELAY_SECONDS = 20
#: A receiver waits this long beyond a round for a sender that is being replaced.
RECEIVER_TIMEOUT_SLACK_SECONDS = 120
#: The ECS agent restarts an exited container only if it ran this long.
MIN_ROUND_SECONDS = 60


def group_of(domain: config.Domain, name: str) -> config.Group:
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
    hardening as the relay. The probe commands measure one stream of known length, so the
    services run in rounds: the sender sends ``rate * round_seconds`` datagrams and exits;
    each receiver prints its JSON report to the log group when the round ends (exit
    status 1 when it lost any datagram) and exits. The ECS agent restarts both containers
    in place; the sender waits 20 s first so the receivers have rejoined before the new
    stream starts. The receivers' service is created first, so the first round is whole.
    A receiver replaced in the middle of a round reports that round's missed start as loss.

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
        round_seconds: default 300; length of one measured stream (at least 60).
        size: default 64; probe datagram payload bytes.
        ttl: default 8, as the relay's default.
        log_group: default a new log group, deleted with the stack (probe reports are
            diagnostics), with ``log_retention`` (default two weeks).

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
        probe: config.Probe,
        domain: config.Domain,
        members_security_group: ec2.ISecurityGroup,
        capacity_provider: ecs.AsgCapacityProvider | None = None,
        image: ecs.ContainerImage | None = None,
        round_seconds: int = 300,
        size: int = 64,
        ttl: int = 8,
        log_group: logs.ILogGroup | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.TWO_WEEKS,
    ) -> None:
        super().__init__(scope, id_)
        if probe.domain != domain.name:
            raise ValueError(f"probe.domain is {probe.domain!r} but the domain given is {domain.name!r}")
        if not subnets:
            raise ValueError(f"no multicast subnet given for the probes of domain {domain.name!r}")
        if round_seconds < MIN_ROUND_SECONDS:
            raise ValueError(f"round_seconds {round_seconds} is below {MIN_ROUND_SECONDS}")
        self.group = group_of(domain, probe.group)
        image = image or tools_image()
        target = f"{self.group.address}:{self.group.port}"
        count = probe.rate * round_seconds

        self.log_group = log_group or logs.LogGroup(
            self, "LogGroup", retention=log_retention, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        self.receiver_task_definition = ecs.Ec2TaskDefinition(
            self, "ReceiverTaskDefinition", network_mode=ecs.NetworkMode.AWS_VPC
        )
        receive = ["probe", "recv", "--group", target, "--interface", TASK_INTERFACE]
        receive += ["--count", str(count), "--idle", str(RECEIVER_IDLE_SECONDS)]
        receive += [
            "--timeout",
            str(round_seconds + SENDER_START_DELAY_SECONDS + RECEIVER_TIMEOUT_SLACK_SECONDS),
        ]
        self.receiver_container = add_tools_container(
            self.receiver_task_definition,
            "Receiver",
            image=image,
            command=[*receive, "--json"],
            log_group=self.log_group,
            cpu=256,
            memory_mib=RECEIVER_BASE_MIB + math.ceil(count * RECEIVER_BYTES_PER_DATAGRAM / 2**20),
            stop_timeout=cdk.Duration.seconds(10),
            restart_after_exit=True,
        )
        self.sender_task_definition = ecs.Ec2TaskDefinition(
            self, "SenderTaskDefinition", network_mode=ecs.NetworkMode.AWS_VPC
        )
        send = ["mcastkit", "probe", "send", "--group", target, "--interface", TASK_INTERFACE]
        send += ["--ttl", str(ttl), "--rate", str(probe.rate), "--count", str(count), "--size", str(size)]
        self.sender_container = add_tools_container(
            self.sender_task_definition,
            "Sender",
            image=image,
            # The delay needs a shell; exec hands the process (and SIGTERM) to mcastkit.
            entry_point=["/bin/sh", "-c"],
            command=[f"sleep {SENDER_START_DELAY_SECONDS} && exec {shlex.join([*send, '--json'])}"],
            log_group=self.log_group,
            cpu=256,
            memory_mib=128,
            stop_timeout=cdk.Duration.seconds(10),
            restart_after_exit=True,
        )

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
