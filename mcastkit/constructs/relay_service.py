"""The egress relay as an ECS service: datacenter multicast re-emitted inside a domain.

Direct Connect and VPN do not carry multicast, so the datacenter's ingress relay sends
the datagrams over TCP and this service re-emits them as multicast from a task ENI in
the domain's subnets. It runs on the IGMPv2 EC2 cluster (Fargate cannot do multicast)
in ``awsvpc`` mode, and shares the tools image and container hardening with the probes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_servicediscovery as servicediscovery
from constructs import Construct, IConstruct

from mcastkit.config import Domain, Relay
from mcastkit.config.names import RELAY_METRICS_PORT
from mcastkit.config.rules import (
    EPHEMERAL_PORTS,
    RELAY_ACL_FIRST_RULE,
    RELAY_ACL_LAST_RULE,
    TCP,
    AclRule,
    RelayLink,
    relay_links,
)
from mcastkit.constructs.member_rules import acl_entry

#: The source checkout that holds the Dockerfile: the build context of the tools image.
REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = "Dockerfile"
#: The uid:gid the Dockerfile creates; the task definitions run every container as it.
TOOLS_USER = "10001:10001"
#: Inside an ``awsvpc`` task the ECS agent names the task ENI ``eth0`` (``ecs-eth0`` is its
#: veth to the agent's bridge, for credentials and metadata).
TASK_INTERFACE = "eth0"
#: The environment variable ECS fills from Secrets Manager with the shared relay secret.
RELAY_SECRET_ENV = "MCASTKIT_RELAY_SECRET"
#: SIGTERM to SIGKILL: time for the relay to drain its queues (ECS on EC2 allows up to 120 s).
DEFAULT_STOP_TIMEOUT = cdk.Duration.seconds(30)


#: The image platform for each host architecture (``Capacity.architecture``).
PLATFORMS = {"x86_64": ecr_assets.Platform.LINUX_AMD64, "arm64": ecr_assets.Platform.LINUX_ARM64}


def tools_image(architecture: str = "x86_64") -> ecs.ContainerImage:
    """The mcastkit tools image, built from the repository's Dockerfile at deploy time, for the
    hosts' architecture (a deploy from an arm64 laptop must still build an x86 image for x86 hosts).

    ``cdk synth`` only stages the build context (``.dockerignore`` keeps it to the package
    sources), so no Docker engine is needed to synthesize.
    """
    if not (REPO_ROOT / DOCKERFILE).is_file():
        raise FileNotFoundError(
            f"the tools image is built from a source checkout: {REPO_ROOT / DOCKERFILE} not found; "
            "pass image= to use a prebuilt image instead"
        )
    return ecs.ContainerImage.from_asset(str(REPO_ROOT), file=DOCKERFILE, platform=PLATFORMS[architecture])


def add_tools_container(
    task_definition: ecs.TaskDefinition,
    id_: str,
    *,
    image: ecs.ContainerImage,
    command: Sequence[str],
    log_group: logs.ILogGroup,
    cpu: int,
    memory_mib: int,
    stop_timeout: cdk.Duration,
    secrets: Mapping[str, ecs.Secret] | None = None,
    health_check: ecs.HealthCheck | None = None,
    restart_after_exit: bool = False,
) -> ecs.ContainerDefinition:
    """Add an ``mcastkit`` container with the hardening every tools task shares.

    Non-root user, read-only root filesystem with a small ``/tmp`` tmpfs, every Linux
    capability dropped (joining and sending multicast needs none), an init process that
    forwards SIGTERM and reaps children, a hard memory limit, and non-blocking ``awslogs``
    so a CloudWatch Logs slowdown never stalls the data path. ``command`` is what follows
    the image's entry point (``mcastkit``). With ``restart_after_exit`` the ECS agent restarts the
    container in place (same task and ENI) when it exits after running at least a minute.
    """
    linux_parameters = ecs.LinuxParameters(
        task_definition, f"{id_}LinuxParameters", init_process_enabled=True
    )
    linux_parameters.drop_capabilities(ecs.Capability.ALL)
    linux_parameters.add_tmpfs(ecs.Tmpfs(container_path="/tmp", size=16))
    container = task_definition.add_container(
        id_,
        image=image,
        command=list(command),
        cpu=cpu,
        memory_limit_mib=memory_mib,
        user=TOOLS_USER,
        readonly_root_filesystem=True,
        linux_parameters=linux_parameters,
        stop_timeout=stop_timeout,
        secrets=dict(secrets) if secrets else None,
        health_check=health_check,
        enable_restart_policy=restart_after_exit or None,
        restart_attempt_period=cdk.Duration.seconds(60) if restart_after_exit else None,
        logging=ecs.LogDrivers.aws_logs(
            stream_prefix=id_.lower(),
            log_group=log_group,
            mode=ecs.AwsLogDriverMode.NON_BLOCKING,
            max_buffer_size=cdk.Size.mebibytes(25),
        ),
    )
    cdk.Validations.of(task_definition).acknowledge(
        cdk.Acknowledgment(
            id="AwsSolutions-ECS2",
            reason="The only environment variable is AWS_REGION, which aws-cdk-lib adds to every awsvpc "
            "task on EC2; it is not a secret. Secrets (the relay's) come from Secrets Manager.",
        )
    )
    if task_definition.execution_role is not None:
        cdk.Validations.of(task_definition.execution_role).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="ecr:GetAuthorizationToken, needed to pull the tools image, supports no "
                "resource-level permissions; every other statement names its resource (the image "
                "repository, the log group, the relay secret).",
            )
        )
    return container


def capacity_strategy(
    capacity_provider: ecs.AsgCapacityProvider | None,
) -> list[ecs.CapacityProviderStrategy] | None:
    """Place tasks through the cluster's capacity provider when there is one (managed scaling
    then adds instances when task ENIs run out); otherwise the EC2 launch type."""
    if capacity_provider is None:
        return None
    name = capacity_provider.capacity_provider_name
    return [ecs.CapacityProviderStrategy(capacity_provider=name, weight=1)]


@jsii.implements(cdk.IAspect)
class _AfterCapacityProviderAssociations:
    """Make a service depend on its cluster's capacity provider associations, which the
    cluster only creates at synth time (from an aspect of its own, run before this one)."""

    def __init__(self, service: ecs.BaseService, cluster: ecs.ICluster) -> None:
        self._service = service
        self._cluster = cluster

    def visit(self, node: IConstruct) -> None:
        if node is not self._service:
            return
        for child in self._cluster.node.children:
            if isinstance(child, ecs.CfnClusterCapacityProviderAssociations):
                self._service.node.add_dependency(child)


def wait_for_capacity_providers(service: ecs.BaseService, cluster: ecs.ICluster) -> None:
    """Create ``service`` after the cluster's capacity provider associations: a service whose
    strategy names a provider the cluster does not know yet fails to create."""
    cdk.Aspects.of(service).add(
        _AfterCapacityProviderAssociations(service, cluster), priority=cdk.AspectPriority.READONLY
    )


def _healthz_command(port: int) -> list[str]:
    # python:3.11-slim has no curl; urlopen raises (non-zero exit) on refusal or a non-2xx.
    probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/healthz', timeout=3)"
    return ["CMD", "python", "-c", probe]


class RelayService(Construct):
    """The egress relay of ``relay.domain`` as an ECS service on the IGMPv2 EC2 cluster.

    With ``relay.connect`` (what the config requires) it dials those ingress endpoints (task
    addresses change on every deployment; the datacenter's do not) and admits nothing inbound.
    Without it the relay listens on ``relay.port`` and its security group admits that port from
    ``relay.datacenter_cidrs`` only: for a caller that gives the task a stable address (a load
    balancer, a Cloud Map name in ``namespace``), which mcastkit's stacks do not. The domain's
    members security group (IGMP and UDP to the groups) is attached next to it. The shared
    secret comes from Secrets Manager as an environment variable, never from the task
    definition.

    Deployments start the new task before stopping the old one, so the feed has no gap;
    while both are linked to the ingress, receivers see each datagram twice (same sequence
    number). For the same reason ``relay.desired_count`` above 1 duplicates the stream.

    Args:
        cluster: the IGMPv2 ECS cluster with EC2 capacity.
        vpc: the VPC of the cluster and subnets.
        subnets: the multicast subnets of ``relay.domain``; the task ENI lands in one.
        relay: the region's relay config.
        domain: the config of ``relay.domain``.
        members_security_group: the security group with the multicast member rules
            (:attr:`MemberRules.security_group`).
        network_acl: the network ACL of ``subnets`` (:attr:`MemberRules.network_acl`);
            default none. When given, entries for each :func:`relay_links` path and its
            stateless return traffic are added with rule numbers 50-99.
        capacity_provider: default none, the EC2 launch type; give the cluster's capacity
            provider so managed scaling makes room for the task ENI.
        image: default the tools image built from the repository's ``Dockerfile``.
        metrics_port: default 9400; serves ``/metrics`` and ``/healthz`` on the task's
            loopback only: the container health check (and any sidecar of the task, such as a
            metrics agent) reaches it, nothing outside the task does.
        stop_timeout: default 30 s, between SIGTERM (the relay drains) and SIGKILL.
        log_group: default a new log group, retained on stack deletion (it records
            refused peers), with ``log_retention`` (default one month), encrypted with
            ``encryption_key`` (default none: the CloudWatch Logs service key).
        namespace: default none; a Cloud Map namespace in which the task addresses are
            registered as ``relay.<namespace>``, for an ingress that dials the relay.
        metrics_service: default none; the CloudWatch ``Service`` dimension of the metric
            lines it prints (``--emf``), which the log group's awslogs driver publishes.

    Attributes:
        secret, security_group, log_group, task_definition, container, service,
        acl_entries: the resources created or used.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cluster: ecs.ICluster,
        vpc: ec2.IVpc,
        subnets: Sequence[ec2.ISubnet],
        relay: Relay,
        domain: Domain,
        members_security_group: ec2.ISecurityGroup,
        network_acl: ec2.INetworkAcl | None = None,
        capacity_provider: ecs.AsgCapacityProvider | None = None,
        image: ecs.ContainerImage | None = None,
        metrics_port: int = RELAY_METRICS_PORT,
        stop_timeout: cdk.Duration = DEFAULT_STOP_TIMEOUT,
        log_group: logs.ILogGroup | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        encryption_key: kms.IKey | None = None,
        namespace: servicediscovery.INamespace | None = None,
        metrics_service: str | None = None,
    ) -> None:
        super().__init__(scope, id_)
        if relay.domain != domain.name:
            raise ValueError(f"relay.domain is {relay.domain!r} but the domain given is {domain.name!r}")
        if not subnets:
            raise ValueError(f"no multicast subnet given for the relay of domain {domain.name!r}")
        if metrics_port == relay.port and not relay.connect:
            raise ValueError(f"metrics_port {metrics_port} is the relay port (relay.port)")

        links = relay_links(relay)
        self.secret = self._secret(relay)
        self.security_group = self._security_group(vpc, links)
        self.acl_entries = self._acl_entries(network_acl, links) if network_acl is not None else []
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
        self.container = add_tools_container(
            self.task_definition,
            "Relay",
            image=image or tools_image(),
            command=self._command(relay, domain, metrics_port, metrics_service),
            log_group=self.log_group,
            cpu=relay.cpu,
            memory_mib=relay.memory_mib,
            stop_timeout=stop_timeout,
            secrets={RELAY_SECRET_ENV: ecs.Secret.from_secrets_manager(self.secret)},
            health_check=ecs.HealthCheck(
                command=_healthz_command(metrics_port),
                interval=cdk.Duration.seconds(10),
                timeout=cdk.Duration.seconds(5),
                retries=3,
                start_period=cdk.Duration.seconds(20),
            ),
        )
        if not relay.connect:
            self.container.add_port_mappings(
                ecs.PortMapping(container_port=relay.port, protocol=ecs.Protocol.TCP, name="relay")
            )
        self.service = ecs.Ec2Service(
            self,
            "Service",
            cluster=cluster,
            task_definition=self.task_definition,
            desired_count=relay.desired_count,
            vpc_subnets=ec2.SubnetSelection(subnets=list(subnets)),
            security_groups=[self.security_group, members_security_group],
            assign_public_ip=False,
            capacity_provider_strategies=capacity_strategy(capacity_provider),
            placement_strategies=[
                ecs.PlacementStrategy.spread_across(ecs.BuiltInAttributes.AVAILABILITY_ZONE)
            ],
            # Start the replacement before stopping the old task: the feed never has no relay.
            min_healthy_percent=100,
            max_healthy_percent=200,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
            enable_ecs_managed_tags=True,
            cloud_map_options=(
                ecs.CloudMapOptions(
                    cloud_map_namespace=namespace,
                    name="relay",
                    dns_record_type=servicediscovery.DnsRecordType.A,
                    dns_ttl=cdk.Duration.seconds(10),
                )
                if namespace is not None
                else None
            ),
        )
        if capacity_provider is not None:
            wait_for_capacity_providers(self.service, cluster)
        self._acknowledge()

    def _secret(self, relay: Relay) -> secretsmanager.ISecret:
        if relay.secret_arn is not None:
            # ECS resolves Secrets Manager secrets by complete ARN only (aws-cdk#20744).
            return secretsmanager.Secret.from_secret_complete_arn(self, "Secret", relay.secret_arn)
        return secretsmanager.Secret(
            self,
            "Secret",
            description="mcastkit relay: shared secret of the datacenter ingress and this egress relay",
            # A customer-managed key: the grant to the execution role then names the key too.
            encryption_key=kms.Key(
                self,
                "SecretKey",
                description="Encrypts the mcastkit relay secret",
                enable_key_rotation=True,
                removal_policy=cdk.RemovalPolicy.RETAIN,
            ),
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=48, exclude_punctuation=True
            ),
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

    def _security_group(self, vpc: ec2.IVpc, links: Sequence[RelayLink]) -> ec2.SecurityGroup:
        # Multicast out (UDP/IGMP to the groups) comes from the members security group; this
        # one carries the relay's TCP link to the datacenter and nothing else.
        group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="mcastkit egress relay: TCP to or from the datacenter relay only",
            allow_all_outbound=False,
        )
        for link in links:
            if link.inbound:
                group.add_ingress_rule(
                    ec2.Peer.ipv4(link.peer), ec2.Port.tcp(link.port), f"relay from datacenter {link.peer}"
                )
            else:
                group.add_egress_rule(
                    ec2.Peer.ipv4(link.peer), ec2.Port.tcp(link.port), f"relay to datacenter {link.peer}"
                )
        return group

    def _acl_entries(
        self, network_acl: ec2.INetworkAcl, links: Sequence[RelayLink]
    ) -> list[ec2.CfnNetworkAclEntry]:
        # Network ACLs are stateless: the dialing side's ephemeral ports need a rule too.
        if RELAY_ACL_FIRST_RULE + len(links) - 1 > RELAY_ACL_LAST_RULE:
            raise ValueError(
                f"relay: {len(links)} datacenter links (datacenter_cidrs, or connect) need more network "
                f"ACL rule numbers than {RELAY_ACL_FIRST_RULE}-{RELAY_ACL_LAST_RULE}; summarize them"
            )
        entries = []
        for number, link in enumerate(links, start=RELAY_ACL_FIRST_RULE):
            relay_port, ephemeral = (link.port, link.port), EPHEMERAL_PORTS
            # (egress, ports) of the request and of the reply, seen from the relay's subnet.
            request, reply = (False, relay_port), (True, ephemeral)
            if not link.inbound:
                request, reply = (True, relay_port), (False, ephemeral)
            for egress, (first, last) in (request, reply):
                rule = AclRule(egress=egress, protocol=TCP, cidr=link.peer, ports=(first, last))
                entry = acl_entry(
                    self, f"Acl{'Egress' if egress else 'Ingress'}{number}", network_acl, number, rule
                )
                cdk.Validations.of(entry).acknowledge(
                    cdk.Acknowledgment(
                        id="AwsSolutions-VPC3",
                        reason="The multicast subnets' network ACL (MemberRules) admits multicast, HTTPS "
                        "to the endpoints and its return traffic; these entries admit only the relay's "
                        "TCP link to the datacenter.",
                    )
                )
                entries.append(entry)
        return entries

    @staticmethod
    def _command(relay: Relay, domain: Domain, metrics_port: int, metrics_service: str | None) -> list[str]:
        if relay.connect:
            link = [arg for endpoint in relay.connect for arg in ("--connect", str(endpoint))]
        else:
            link = ["--listen", f"0.0.0.0:{relay.port}"]
        # The egress emits only to its domain's groups, whatever the ingress sends.
        allow = [arg for group in domain.groups for arg in ("--allow", str(group.group_port))]
        return [
            "relay",
            "egress",
            *link,
            *allow,
            "--interface",
            TASK_INTERFACE,
            "--ttl",
            str(relay.ttl),
            "--secret-env",
            RELAY_SECRET_ENV,
            "--metrics",
            f"127.0.0.1:{metrics_port}",
            *(["--emf", metrics_service] if metrics_service else []),
        ]

    def _acknowledge(self) -> None:
        if isinstance(self.secret, secretsmanager.Secret):
            cdk.Validations.of(self.secret).acknowledge(
                cdk.Acknowledgment(
                    id="AwsSolutions-SMG4",
                    reason="The relay secret is a pre-shared key also installed on the datacenter ingress "
                    "relay; it is rotated by the operator on both ends together, which a rotation "
                    "Lambda cannot do.",
                )
            )
