"""The compute stack: the IGMPv2 ECS cluster on EC2 in the multicast subnets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from mcastkit.config import Config
from mcastkit.config.models import Region
from mcastkit.config.names import pascal
from mcastkit.constructs.cluster import Igmpv2Cluster
from mcastkit.constructs.log_key import log_key
from mcastkit.constructs.monitoring import AlarmTopic, Dashboard, MetricAlarms
from mcastkit.constructs.probe_tasks import ProbeTasks
from mcastkit.constructs.relay_service import RelayService, tools_image
from mcastkit.constructs.replay_endpoint import ReplayEndpoint
from mcastkit.constructs.sequencer_service import SequencerService
from mcastkit.constructs.stream_journal import StreamJournal
from mcastkit.monitoring import emf
from mcastkit.monitoring.alarms import Cluster, Service, region_alarms, task_alarm_key
from mcastkit.monitoring.dashboard import region_dashboard
from mcastkit.stacks.base import RegionStack


class ComputeStack(RegionStack):
    """The ECS cluster whose tasks (relay, probe, sequencers, customer feeds) join multicast groups.

    Attributes:
        cluster: the :class:`Igmpv2Cluster`.
        relay: the :class:`RelayService` when the region has a ``relay:`` section, else ``None``.
        probes: the :class:`ProbeTasks` when the region has a ``probe:`` section, else ``None``.
        sequencers: :class:`SequencerService` by stream name (each stream's journal and replay
            endpoint come from the network stack: ``journals``, ``replay_endpoints``).
        alarm_topic, alarms, dashboard: the region's :class:`AlarmTopic`, :class:`MetricAlarms`
            and :class:`Dashboard` (``transit_gateway_id`` is for the dashboard).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: Config,
        region: str,
        vpc: ec2.IVpc,
        subnets: Sequence[ec2.ISubnet],
        security_group: ec2.ISecurityGroup,
        network_acl: ec2.INetworkAcl | None = None,
        transit_gateway_id: str,
        journals: Mapping[str, StreamJournal] | None = None,
        replay_endpoints: Mapping[str, ReplayEndpoint] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            id_,
            description=f"mcastkit {config.project} {region}: ECS cluster on EC2 with IGMPv2 hosts",
            availability_zones=config.regions[region].availability_zones,
            **kwargs,
        )
        settings = config.regions[region]
        capacity = settings.capacity
        # ``subnets`` are the configured subnets in config order (MulticastVpc.subnets).
        subnet_of = dict(zip((s.cidr for s in settings.subnets), subnets, strict=True))
        logs_key = log_key(
            self, "LogKey", description="Encrypts the logs of the mcastkit cluster, relay and probes"
        )
        self.cluster = Igmpv2Cluster(
            self,
            "Cluster",
            vpc=vpc,
            # Hosts only where their tasks can run: a task's interface is in its host's zone.
            subnets=[subnet_of[s.cidr] for s in settings.host_subnets],
            security_group=security_group,
            instance_type=capacity.instance_type,
            architecture=capacity.architecture,
            ami=capacity.ami,
            min_capacity=capacity.min,
            max_capacity=capacity.max,
            encryption_key=logs_key,
        )
        image = tools_image(capacity.architecture)

        def subnets_of(domain: str) -> list[ec2.ISubnet]:
            return [subnet_of[s.cidr] for s in settings.subnets_of(domain)]

        self.relay: RelayService | None = None
        if settings.relay:
            self.relay = RelayService(
                self,
                "Relay",
                cluster=self.cluster.cluster,
                vpc=vpc,
                subnets=subnets_of(settings.relay.domain),
                relay=settings.relay,
                domain=settings.relayed(settings.relay.domain),
                members_security_group=security_group,
                network_acl=network_acl,
                capacity_provider=self.cluster.capacity_provider,
                image=image,
                encryption_key=logs_key,
                metrics_service=emf.service_name(config.project, "relay"),
            )
        self.probes: ProbeTasks | None = None
        if settings.probe:
            self.probes = ProbeTasks(
                self,
                "Probes",
                cluster=self.cluster.cluster,
                subnets=subnets_of(settings.probe.domain),
                probe=settings.probe,
                domain=settings.domain(settings.probe.domain),
                members_security_group=security_group,
                capacity_provider=self.cluster.capacity_provider,
                image=image,
                encryption_key=logs_key,
                metrics_service=emf.service_name(config.project, "probe", settings.probe.group),
            )
        self.sequencers: dict[str, SequencerService] = {}
        for stream in settings.streams:
            if journals is None or replay_endpoints is None:
                raise ValueError(f"stream {stream.name!r}: give the network stack's journals and endpoints")
            endpoint = replay_endpoints[stream.name]
            self.sequencers[stream.name] = SequencerService(
                self,
                f"Sequencer{pascal(stream.name)}",
                cluster=self.cluster.cluster,
                vpc=vpc,
                vpc_cidr=settings.vpc_cidr,
                subnets=subnets_of(stream.domain),
                stream=stream,
                domain=settings.domain(stream.domain),
                members_security_group=security_group,
                journal=journals[stream.name],
                load_balancer=endpoint.load_balancer,
                load_balancer_security_group=endpoint.security_group,
                capacity_provider=self.cluster.capacity_provider,
                image=image,
                encryption_key=logs_key,
                metrics_service=emf.service_name(config.project, "stream", stream.name),
            )
        self._monitoring(config, region, transit_gateway_id)

    def _services(self, settings: Region) -> list[tuple[Service, ecs.Ec2Service]]:
        """The ECS services of this stack, as the alarms and the dashboard name them."""
        services = []
        if self.relay is not None and settings.relay is not None:
            service = self.relay.service
            services.append((Service("Relay", service.service_name, settings.relay.desired_count), service))
        if self.probes is not None and settings.probe is not None:
            receivers, sender = self.probes.receiver_service, self.probes.sender_service
            services.append(
                (Service("ProbeReceivers", receivers.service_name, settings.probe.receivers), receivers)
            )
            services.append((Service("ProbeSender", sender.service_name, 1), sender))
        for name, sequencer in self.sequencers.items():
            service = sequencer.service
            services.append((Service(f"Sequencer{pascal(name)}", service.service_name, 1), service))
        return services

    def _monitoring(self, config: Config, region: str, transit_gateway_id: str) -> None:
        """The alarm topic, the alarms and the dashboard of the region."""
        prefix = f"{config.project}-{region}"
        pairs = self._services(config.regions[region])
        services = [service for service, _ in pairs]
        cluster = Cluster(
            name=self.cluster.cluster.cluster_name,
            auto_scaling_group=self.cluster.auto_scaling_group.auto_scaling_group_name,
            capacity_provider=self.cluster.capacity_provider.capacity_provider_name,
        )
        self.alarm_topic = AlarmTopic(
            self,
            "AlarmTopic",
            monitoring=config.monitoring,
            alarm_prefix=prefix,
            description=f"Encrypts the alarm notifications of mcastkit {config.project} in {region}",
        )
        specs = region_alarms(
            config.project,
            config.regions[region],
            config.monitoring.alarms,
            cluster=cluster,
            services=services,
        )
        self.alarms = MetricAlarms(self, "Alarms", specs=specs, topic=self.alarm_topic.topic, prefix=prefix)
        # Alarms start judging once the services are up (CloudFormation waits for them to be
        # stable), not while the first hosts boot: no ALARM on a first deploy that succeeds.
        # (An alarm that names a service already waits for it.)
        for key, alarm in self.alarms.alarms.items():
            for service, ecs_service in pairs:
                if key != task_alarm_key(service):
                    alarm.node.add_dependency(ecs_service)
        body = region_dashboard(
            config.project,
            region,
            config.regions[region],
            cluster=cluster,
            services=services,
            transit_gateway=transit_gateway_id,
            alarm_arns=[alarm.attr_arn for alarm in self.alarms.alarms.values()],
        )
        self.dashboard = Dashboard(self, "Dashboard", name=prefix, body=body)
