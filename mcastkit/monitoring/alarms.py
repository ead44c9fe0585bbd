"""The alarms of one region, as plain data the compute stack turns into ``AWS::CloudWatch::Alarm``.

What each watches:

- the relay (its ``--emf`` lines, :class:`emf.Relay`): no link up, datagrams lost on the link;
- the probe receivers (:class:`emf.Probe`): loss in a minute, a receiver that hears nothing, a
  sender that keeps starting over (its container is restarted in place, so ECS still counts
  the task as running);
- each sequencer (:class:`emf.Sequencer`): packets the kernel refused to send, and silence
  (its heartbeats go out every second even when the feed is quiet: none means it is stuck);
- ECS: a service running fewer tasks than it should (Container Insights, which the cluster
  enables: tasks that fail and are replaced, or find no room);
- the hosts: fewer in service than ``capacity.min`` (the Auto Scaling group's own metric), and
  tasks waiting for hosts that never register with the cluster (managed scaling's capacity
  reservation stays above 100%). Container Insights' ``ContainerInstanceCount`` would not do:
  it counts only hosts that run a task.

A metric that stops arriving is itself the failure for "is it up" alarms (``breaching``); for
"how much went wrong" alarms no data means nothing went wrong (``notBreaching``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mcastkit.config.models import Alarms, Region
from mcastkit.config.names import pascal
from mcastkit.monitoring import emf

#: Container Insights' namespace and metrics (CloudWatch user guide, "Amazon ECS Container
#: Insights metrics": RunningTaskCount by ClusterName and ServiceName, ContainerInstanceCount
#: by ClusterName).
CONTAINER_INSIGHTS = "ECS/ContainerInsights"
MINUTE = 60
#: The period of the "how much in five minutes" alarms.
FIVE_MINUTES = 300
FIFTEEN_MINUTES = 900
#: The Auto Scaling group's metric (sent once group metrics collection is on for it).
AUTO_SCALING = "AWS/AutoScaling"
#: Managed scaling's metric: the capacity the tasks need over what the hosts offer, in percent.
MANAGED_SCALING = "AWS/ECS/ManagedScaling"


@dataclass(frozen=True)
class Cluster:
    """The ECS cluster's names the alarms need (CloudFormation tokens in a stack)."""

    name: str
    auto_scaling_group: str
    capacity_provider: str


@dataclass(frozen=True)
class Service:
    """An ECS service the alarms and the dashboard watch.

    ``name`` is the service's name (in a stack, a CloudFormation token), ``key`` a stable
    PascalCase label (``Relay``, ``ProbeReceivers``...), ``desired`` how many tasks it runs.
    """

    key: str
    name: str
    desired: int


@dataclass(frozen=True)
class MetricQuery:
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    statistic: str
    period: int = MINUTE


def mcastkit_metric(metric: emf.Metric, service: str, statistic: str, period: int = MINUTE) -> MetricQuery:
    """One of mcastkit's own metrics, as published by ``--emf`` with ``Service=service``."""
    return MetricQuery(emf.NAMESPACE, metric.name, ((emf.DIMENSION, service),), statistic, period)


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm: ``key`` is its stable id (the alarm is named ``{project}-{region}-{key}``)."""

    key: str
    description: str
    metric: MetricQuery
    comparison: str
    threshold: float
    periods: int
    datapoints: int
    missing: str


def task_alarm_key(service: Service) -> str:
    """The key of the alarm on ``service``'s running tasks."""
    return f"{service.key}TasksBelowDesired"


def region_alarms(
    project: str,
    settings: Region,
    thresholds: Alarms,
    *,
    cluster: Cluster,
    services: Sequence[Service],
) -> list[AlarmSpec]:
    """The alarms of a region whose ECS cluster is ``cluster`` and runs ``services``."""
    alarms: list[AlarmSpec] = []
    if settings.relay is not None and settings.relay.desired_count > 0:
        relay = emf.service_name(project, "relay")
        alarms.append(
            AlarmSpec(
                key="RelayLinkDown",
                description=f"No relay link up for {thresholds.relay_down_minutes} min (or no report from "
                "the relay): the datacenter ingress is down or unreachable, or refused (different "
                "secrets). Look at the relay task's log in the compute stack's log group.",
                metric=mcastkit_metric(emf.Relay.PEERS, relay, "Maximum"),
                comparison="LessThanThreshold",
                threshold=1,
                periods=thresholds.relay_down_minutes,
                datapoints=thresholds.relay_down_minutes,
                missing="breaching",
            )
        )
        alarms.append(
            AlarmSpec(
                key="RelayGaps",
                description=f"More than {thresholds.relay_gaps} datagrams lost on the relay link in 5 min "
                "(gaps the ingress's replay window could not fill after a reconnect). Look for "
                "reconnects in the relay's log; raise the ingress's --replay-seconds if links flap.",
                metric=mcastkit_metric(emf.Relay.GAPS, relay, "Sum", FIVE_MINUTES),
                comparison="GreaterThanThreshold",
                threshold=thresholds.relay_gaps,
                periods=1,
                datapoints=1,
                missing="notBreaching",
            )
        )
    if settings.probe is not None and settings.probe.receivers > 0:
        probe = emf.service_name(project, "probe", settings.probe.group)
        alarms.append(
            AlarmSpec(
                key="ProbeLoss",
                description=f"A probe receiver lost more than {thresholds.probe_loss_percent}% of the probe "
                f"stream on group {settings.probe.group} in a minute: multicast in domain "
                f"{settings.probe.domain} is losing datagrams.",
                metric=mcastkit_metric(emf.Probe.LOSS, probe, "Maximum"),
                comparison="GreaterThanThreshold",
                threshold=thresholds.probe_loss_percent,
                periods=1,
                datapoints=1,
                missing="notBreaching",
            )
        )
        alarms.append(
            AlarmSpec(
                key="ProbeSilent",
                description=f"A probe receiver heard nothing on group {settings.probe.group} for "
                f"{thresholds.probe_silent_minutes} min (or no receiver reported): delivery in domain "
                f"{settings.probe.domain} stopped, or the probe sender is down. Run `mcastkit doctor` "
                "on a host of the cluster.",
                metric=mcastkit_metric(emf.Probe.RECEIVED, probe, "Minimum"),
                comparison="LessThanThreshold",
                threshold=1,
                periods=thresholds.probe_silent_minutes,
                datapoints=thresholds.probe_silent_minutes,
                missing="breaching",
            )
        )
        receivers = settings.probe.receivers
        alarms.append(
            AlarmSpec(
                key="ProbeSenderRestarts",
                description=f"The probe sender started over more than {thresholds.probe_sender_restarts} "
                "times in 15 min (each receiver counts each new stream): it keeps failing. Look at the "
                "probe sender's log.",
                metric=mcastkit_metric(emf.Probe.SENDER_RESTARTS, probe, "Sum", FIFTEEN_MINUTES),
                comparison="GreaterThanThreshold",
                threshold=thresholds.probe_sender_restarts * receivers,
                periods=1,
                datapoints=1,
                missing="notBreaching",
            )
        )
    for stream in settings.streams:
        stream_service = emf.service_name(project, "stream", stream.name)
        alarms.append(
            AlarmSpec(
                key=f"Stream{pascal(stream.name)}SendErrors",
                description=f"Sequencer of stream {stream.name} failed to send more than "
                f"{thresholds.stream_send_errors} packets in 5 min: subscribers see gaps and recover "
                "them from the journal. Look at the sequencer's log.",
                metric=mcastkit_metric(
                    emf.Sequencer.SEND_ERRORS,
                    emf.service_name(project, "stream", stream.name),
                    "Sum",
                    FIVE_MINUTES,
                ),
                comparison="GreaterThanThreshold",
                threshold=thresholds.stream_send_errors,
                periods=1,
                datapoints=1,
                missing="notBreaching",
            )
        )
        alarms.append(
            AlarmSpec(
                key=f"Stream{pascal(stream.name)}Silent",
                description=f"Sequencer of stream {stream.name} published nothing, not even a heartbeat, "
                f"for {thresholds.stream_silent_minutes} min (or did not report): it is stuck or gone. "
                "Look at the sequencer's log; ECS replaces a task that fails its health check.",
                metric=mcastkit_metric(emf.Sequencer.PACKETS, stream_service, "Sum"),
                comparison="LessThanThreshold",
                threshold=1,
                periods=thresholds.stream_silent_minutes,
                datapoints=thresholds.stream_silent_minutes,
                missing="breaching",
            )
        )
    for service in services:
        if service.desired < 1:
            continue
        alarms.append(
            AlarmSpec(
                key=task_alarm_key(service),
                description=f"{service.key}: fewer than {service.desired} task(s) running for "
                f"{thresholds.tasks_below_desired_minutes} min (tasks failing and restarting, or no "
                "room on the hosts). The service's events in the ECS console say why.",
                metric=MetricQuery(
                    CONTAINER_INSIGHTS,
                    "RunningTaskCount",
                    (("ClusterName", cluster.name), ("ServiceName", service.name)),
                    "Minimum",
                ),
                comparison="LessThanThreshold",
                threshold=service.desired,
                periods=thresholds.tasks_below_desired_minutes,
                datapoints=thresholds.tasks_below_desired_minutes,
                missing="breaching",
            )
        )
    if settings.capacity.min > 0:
        alarms.append(
            AlarmSpec(
                key="HostsMissing",
                description=f"Fewer than {settings.capacity.min} hosts (capacity.min) in service for "
                f"{thresholds.hosts_missing_minutes} min: instances fail to launch or their health "
                "checks fail. The Auto Scaling group's activity history says why.",
                metric=MetricQuery(
                    AUTO_SCALING,
                    "GroupInServiceInstances",
                    (("AutoScalingGroupName", cluster.auto_scaling_group),),
                    "Minimum",
                ),
                comparison="LessThanThreshold",
                threshold=settings.capacity.min,
                periods=thresholds.hosts_missing_minutes,
                datapoints=thresholds.hosts_missing_minutes,
                missing="breaching",
            )
        )
    alarms.append(
        AlarmSpec(
            key="HostsNotRegistering",
            description=f"Tasks have waited for hosts for {thresholds.hosts_missing_minutes} min (capacity "
            "reservation over 100%): hosts launch but do not register with the cluster, or "
            "capacity.max is reached. On a host (Session Manager): /var/log/ecs/ecs-init.log and "
            "ecs-agent.log; `mcastkit doctor` for its multicast setup.",
            metric=MetricQuery(
                MANAGED_SCALING,
                "CapacityProviderReservation",
                (("CapacityProviderName", cluster.capacity_provider), ("ClusterName", cluster.name)),
                "Minimum",
            ),
            comparison="GreaterThanThreshold",
            threshold=100,
            periods=thresholds.hosts_missing_minutes,
            datapoints=thresholds.hosts_missing_minutes,
            missing="notBreaching",
        )
    )
    return alarms
