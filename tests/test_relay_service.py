"""RelayService: the egress relay as an ECS service, checked in a synthesized template."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import aws_servicediscovery as servicediscovery
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks
from ecs_support import REGION, ClusterStack, bare_service_args, config_data, findings_under

from mcastkit import config
from mcastkit.cli import build_parser
from mcastkit.config.rules import acl_plan, member_acl_room
from mcastkit.constructs.relay_service import (
    DOCKERFILE,
    RELAY_SECRET_ENV,
    REPO_ROOT,
    TOOLS_USER,
    RelayService,
)

DATACENTER_CIDRS = ["192.168.40.0/24", "172.16.8.0/22"]


INGRESS = "192.168.40.10:7400"
ROUTE = "vgw-0123456789abcdef0"


def _relay_data(**relay: Any) -> dict[str, Any]:
    return config_data(relay={"domain": "market-data", "datacenter_cidrs": DATACENTER_CIDRS, **relay})


def _config(**relay: Any) -> config.Config:
    """Through every config check: by default the egress dials one ingress, with a route to it."""
    return config.parse_config(_relay_data(**{"connect": [INGRESS], "route_via": ROUTE, **relay}))


def _unchecked(**relay: Any) -> config.Config:
    """The models only: what the construct builds for a relay, a listening one included, whatever
    the config's policy (it refuses a listening relay: nothing gives the task a stable address)."""
    return config.Config.model_validate(_relay_data(**relay))


class Fixture(ClusterStack):
    """The cluster stack with a RelayService for market-data, checked with cdk-nag."""

    def __init__(
        self, tmp: Path, *, with_acl: bool = True, with_namespace: bool = False, **relay: Any
    ) -> None:
        region = _unchecked(**relay).regions[REGION]
        super().__init__(region, tmp)
        assert region.relay is not None
        self.relay_config = region.relay
        self.domain_subnets = self.subnets_of(region.relay.domain)
        self.relay_domain = region.domain(region.relay.domain)
        self.relay = RelayService(
            self.stack,
            "Relay",
            cluster=self.cluster.cluster,
            vpc=self.vpc,
            subnets=self.domain_subnets,
            relay=region.relay,
            domain=self.relay_domain,
            members_security_group=self.members.security_group,
            network_acl=self.members.network_acl if with_acl else None,
            capacity_provider=self.cluster.capacity_provider,
            namespace=(
                servicediscovery.PrivateDnsNamespace(
                    self.stack, "Namespace", name="mcast.internal", vpc=self.vpc
                )
                if with_namespace
                else None
            ),
        )
        self.report = AwsSolutionsChecks().validate_scope(self.app)
        self.template = Template.from_stack(self.stack)

    def container(self) -> dict[str, Any]:
        (task,) = self.template.find_resources("AWS::ECS::TaskDefinition").values()
        (container,) = task["Properties"]["ContainerDefinitions"]
        return dict(container)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    return Fixture(tmp_path_factory.mktemp("relay"))


def test_task_runs_in_awsvpc_mode_on_ec2(built: Fixture) -> None:
    built.template.has_resource_properties(
        "AWS::ECS::TaskDefinition", {"NetworkMode": "awsvpc", "RequiresCompatibilities": ["EC2"]}
    )


def test_relay_security_group_admits_the_relay_port_from_the_datacenter_only(built: Fixture) -> None:
    group = built.template.to_json()["Resources"][built.logical_id(built.relay.security_group)]
    ingress = group["Properties"]["SecurityGroupIngress"]
    assert sorted((r["CidrIp"], r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in ingress) == sorted(
        (cidr, "tcp", 7400, 7400) for cidr in DATACENTER_CIDRS
    )
    # No default allow-all egress: CDK renders its "disallow all" placeholder instead.
    (egress,) = group["Properties"]["SecurityGroupEgress"]
    assert egress["CidrIp"] == "255.255.255.255/32"
    # Nothing else in the stack opens the relay port.
    rules = built.template.find_resources("AWS::EC2::SecurityGroupIngress")
    assert not [r for r in rules.values() if r["Properties"].get("FromPort") == 7400]


def test_service_is_private_in_the_domain_subnets_with_both_security_groups(built: Fixture) -> None:
    (service,) = built.template.find_resources("AWS::ECS::Service").values()
    network = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network["AssignPublicIp"] == "DISABLED"
    assert network["Subnets"] == [built.stack.resolve(s.subnet_id) for s in built.domain_subnets]
    assert network["SecurityGroups"] == [
        {"Fn::GetAtt": [built.logical_id(built.relay.security_group), "GroupId"]},
        {"Fn::GetAtt": [built.logical_id(built.members.security_group), "GroupId"]},
    ]
    assert service["Properties"]["DesiredCount"] == 1
    assert "LaunchType" not in service["Properties"]
    (strategy,) = service["Properties"]["CapacityProviderStrategy"]
    assert strategy["CapacityProvider"] == built.stack.resolve(
        built.cluster.capacity_provider.capacity_provider_name
    )
    # The capacity provider must be associated with the cluster before the service exists.
    associations = built.template.find_resources("AWS::ECS::ClusterCapacityProviderAssociations")
    assert set(associations) <= set(service["DependsOn"])


def test_deployment_starts_the_new_relay_before_stopping_the_old(built: Fixture) -> None:
    built.template.has_resource_properties(
        "AWS::ECS::Service",
        {
            "DeploymentConfiguration": Match.object_like(
                {
                    "MinimumHealthyPercent": 100,
                    "MaximumPercent": 200,
                    "DeploymentCircuitBreaker": {"Enable": True, "Rollback": True},
                }
            )
        },
    )


def test_container_is_hardened(built: Fixture) -> None:
    container = built.container()
    assert container["User"] == TOOLS_USER
    assert not container["User"].startswith(("0", "root"))
    assert container["ReadonlyRootFilesystem"] is True
    assert container["LinuxParameters"]["Capabilities"] == {"Drop": ["ALL"]}
    assert container["LinuxParameters"]["InitProcessEnabled"] is True
    assert container["StopTimeout"] == 30
    assert container["Memory"] == 512 and container["Cpu"] == 512
    assert "Privileged" not in container


def test_health_check_calls_healthz_on_the_metrics_port(built: Fixture) -> None:
    container = built.container()
    check = container["HealthCheck"]
    assert check["Command"][:2] == ["CMD", "python"]
    assert "http://127.0.0.1:9400/healthz" in check["Command"][-1]
    assert check["StartPeriod"] > 0 and check["Retries"] >= 1
    command = container["Command"]
    assert command[command.index("--metrics") + 1] == "127.0.0.1:9400"  # the task's loopback only


def test_command_is_one_the_relay_cli_accepts(built: Fixture) -> None:
    command = built.container()["Command"]
    args = build_parser().parse_args(command)
    assert (args.command, args.role) == ("relay", "egress")
    assert command[command.index("--listen") + 1] == "0.0.0.0:7400"
    assert command[command.index("--interface") + 1] == "eth0"
    assert command[command.index("--ttl") + 1] == "8"
    assert command[command.index("--secret-env") + 1] == RELAY_SECRET_ENV
    assert "--secret-file" not in command


def test_secret_is_generated_and_injected_from_secrets_manager(built: Fixture) -> None:
    secret_id = built.logical_id(built.relay.secret)
    secret = built.template.to_json()["Resources"][secret_id]
    assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32
    assert secret["DeletionPolicy"] == "Retain"
    assert built.container()["Secrets"] == [{"Name": RELAY_SECRET_ENV, "ValueFrom": {"Ref": secret_id}}]
    # Only the execution role (the ECS agent) reads it; the task role has no policy at all.
    built.template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": Match.array_with(["secretsmanager:GetSecretValue"]),
                                "Resource": {"Ref": secret_id},
                            }
                        )
                    ]
                )
            },
            "Roles": [built.stack.resolve(built.relay.task_definition.obtain_execution_role().role_name)],
        },
    )
    task_role = built.stack.resolve(built.relay.task_definition.task_role.role_name)
    policies = built.template.find_resources("AWS::IAM::Policy")
    assert not [p for p in policies.values() if task_role in p["Properties"]["Roles"]]
    assert not built.template.find_resources("AWS::IAM::ManagedPolicy")


def test_logs_go_to_a_retained_log_group_with_retention(built: Fixture) -> None:
    group_id = built.logical_id(built.relay.log_group)
    group = built.template.to_json()["Resources"][group_id]
    assert group["Properties"]["RetentionInDays"] == 30
    assert group["DeletionPolicy"] == "Retain"
    logging = built.container()["LogConfiguration"]
    assert logging["LogDriver"] == "awslogs"
    assert logging["Options"]["awslogs-group"] == {"Ref": group_id}
    assert logging["Options"]["mode"] == "non-blocking"


def test_network_acl_admits_the_relay_connection_and_its_return_traffic(built: Fixture) -> None:
    acl = {"Ref": built.logical_id(built.members.network_acl)}
    for number, cidr in enumerate(DATACENTER_CIDRS, start=50):
        for egress, ports in ((False, {"From": 7400, "To": 7400}), (True, {"From": 1024, "To": 65535})):
            entry = {"Egress": egress, "PortRange": ports, "Protocol": 6, "CidrBlock": cidr}
            built.template.has_resource_properties(
                "AWS::EC2::NetworkAclEntry",
                {"NetworkAclId": acl, "RuleNumber": number, "RuleAction": "allow", **entry},
            )
    numbers = [
        (e["Properties"]["Egress"], e["Properties"]["RuleNumber"])
        for e in built.template.find_resources("AWS::EC2::NetworkAclEntry").values()
    ]
    assert len(numbers) == len(set(numbers)), "network ACL rule numbers collide with the member rules"


def test_cdk_nag_has_no_unacknowledged_findings_on_the_relay(built: Fixture) -> None:
    assert findings_under(built.report, "Test/Relay/") == []
    # The pack did run: the fixture's own VPC has no flow log and is reported.
    assert any("VPC7" in finding for finding in findings_under(built.report, "Test/Vpc"))


def test_imported_secret_is_referenced_by_its_complete_arn(tmp_path: Path) -> None:
    arn = "arn:aws:secretsmanager:eu-west-2:111111111111:secret:venue-md/relay-AbC123"
    fixture = Fixture(tmp_path, with_acl=False, with_namespace=True, secret_arn=arn)
    assert not fixture.template.find_resources("AWS::SecretsManager::Secret")
    assert fixture.container()["Secrets"] == [{"Name": RELAY_SECRET_ENV, "ValueFrom": arn}]
    fixture.template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Action": Match.array_with(["secretsmanager:GetSecretValue"]), "Resource": arn}
                        )
                    ]
                )
            }
        },
    )
    assert not fixture.template.find_resources(
        "AWS::EC2::NetworkAclEntry", {"Properties": {"RuleNumber": 50}}
    )
    # An ingress that dials in finds the listening task by name: relay.<namespace>, A records.
    fixture.template.has_resource_properties(
        "AWS::ServiceDiscovery::Service",
        {"Name": "relay", "DnsConfig": Match.object_like({"DnsRecords": [{"TTL": 10, "Type": "A"}]})},
    )
    (service,) = fixture.template.find_resources("AWS::ECS::Service").values()
    assert len(service["Properties"]["ServiceRegistries"]) == 1
    assert findings_under(fixture.report, "Test/Relay/") == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"domain": "reference-data"},
            "relay.domain is 'market-data' but the domain given is 'reference-data'",
        ),
        ({"subnets": []}, "no multicast subnet given for the relay of domain 'market-data'"),
        ({"metrics_port": 7400}, "metrics_port 7400 is the relay port"),
    ],
)
def test_inconsistent_arguments_are_refused(change: dict[str, Any], message: str) -> None:
    region = _unchecked().regions[REGION]  # a listening relay: the metrics port may not be its port
    stack, vpc, common = bare_service_args()
    kwargs = {**common, "vpc": vpc, "relay": region.relay, "domain": region.domain("market-data")}
    if "domain" in change:
        change = {"domain": region.domain(change["domain"])}
    with pytest.raises(ValueError, match=re.escape(message)):
        RelayService(stack, "Relay", **{**kwargs, **change})


def test_datacenter_links_leave_the_members_a_merged_network_acl() -> None:
    """15 links (ingresses dialed): the members' 7 outbound entries per domain would not fit beside
    them in 20; merged (5) they do, and the config accepts what the network stack will build."""
    settings = _config(connect=[f"192.168.40.{i}:7400" for i in range(1, 16)])
    region = settings.regions[REGION]
    room = member_acl_room(settings.quotas, region)
    assert room == 5
    inbound, outbound = acl_plan(
        region.domains, https_egress=True, serve_https_to=region.vpc_cidr, limit=room
    )
    assert (len(inbound), len(outbound)) == (5, 5)


def test_too_many_datacenter_cidrs_for_the_acl_rule_numbers_are_refused(tmp_path: Path) -> None:
    cidrs = [f"172.20.{i}.0/24" for i in range(51)]
    # The config refuses them first (the network ACL quota) ...
    with pytest.raises(config.ConfigError, match=r"network ACL would need 56 inbound"):
        _config(datacenter_cidrs=cidrs, connect=[f"172.20.{i}.10:7400" for i in range(51)])
    # ... and the construct, used on its own, refuses what its rule numbers cannot hold.
    fixture = Fixture(tmp_path)
    with pytest.raises(ValueError, match=r"relay: 51 datacenter links .* need more network ACL rule numbers"):
        RelayService(
            fixture.stack,
            "MoreLinks",
            cluster=fixture.cluster.cluster,
            vpc=fixture.vpc,
            subnets=fixture.domain_subnets,
            relay=config.Relay(domain="market-data", datacenter_cidrs=cidrs),
            domain=fixture.relay_domain,
            members_security_group=fixture.members.security_group,
            network_acl=fixture.members.network_acl,
        )


def test_image_asset_stages_only_the_package_sources(built: Fixture) -> None:
    assembly = built.app.synth()
    (asset_dir,) = Path(assembly.directory).glob("asset.*")
    staged = {p.relative_to(asset_dir).as_posix() for p in asset_dir.rglob("*")}
    assert {DOCKERFILE, "pyproject.toml", "mcastkit/cli.py", "mcastkit/__main__.py"} <= staged
    assert "README.md" not in staged  # a documentation change is no new image
    for excluded in (".venv", "node_modules", "cdk.out", "tests", ".git", "bench"):
        assert not [p for p in staged if p == excluded or p.startswith(excluded + "/")], excluded
    assert not [p for p in staged if "__pycache__" in p]


def test_dockerfile_runs_mcastkit_as_the_task_user() -> None:
    lines = [line.strip() for line in (REPO_ROOT / DOCKERFILE).read_text().splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    assert instructions[0] == "FROM python:3.11-slim"
    assert f"USER {TOOLS_USER}" in instructions
    assert 'ENTRYPOINT ["mcastkit"]' in instructions
    install = next(line for line in instructions if "pip install" in line)
    assert "--no-cache-dir" in shlex.split(install.rstrip("\\"))
    uid, gid = TOOLS_USER.split(":")
    assert f"--uid {uid}" in " ".join(lines) and f"--gid {gid}" in " ".join(lines)


def test_connect_mode_dials_the_datacenter_and_admits_nothing_inbound(tmp_path: Path) -> None:
    endpoints = ["192.168.40.5:7400", "172.16.9.1:7500"]
    fixture = Fixture(tmp_path, connect=endpoints)
    command = fixture.container()["Command"]
    args = build_parser().parse_args(command)
    assert (args.command, args.role) == ("relay", "egress")
    assert "--listen" not in command
    assert [command[i + 1] for i, arg in enumerate(command) if arg == "--connect"] == endpoints
    assert "PortMappings" not in fixture.container()  # nothing listens beyond the task's loopback

    group = fixture.template.to_json()["Resources"][fixture.logical_id(fixture.relay.security_group)]
    assert "SecurityGroupIngress" not in group["Properties"]
    egress = group["Properties"]["SecurityGroupEgress"]
    assert sorted((r["CidrIp"], r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in egress) == [
        ("172.16.9.1/32", "tcp", 7500, 7500),
        ("192.168.40.5/32", "tcp", 7400, 7400),
    ]
    acl = {"Ref": fixture.logical_id(fixture.members.network_acl)}
    for number, (peer, port) in enumerate([("192.168.40.5/32", 7400), ("172.16.9.1/32", 7500)], start=50):
        for egress_rule, ports in ((True, {"From": port, "To": port}), (False, {"From": 1024, "To": 65535})):
            entry = {"Egress": egress_rule, "CidrBlock": peer, "Protocol": 6, "PortRange": ports}
            fixture.template.has_resource_properties(
                "AWS::EC2::NetworkAclEntry", {"NetworkAclId": acl, "RuleNumber": number, **entry}
            )
    assert findings_under(fixture.report, "Test/Relay/") == []


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("10.1.1.1:7400", "relay.connect[0]: 10.1.1.1:7400 is not inside datacenter_cidrs"),
        ("relay.example.com:7400", "relay.connect[0]: 'relay.example.com:7400' is not IPV4:PORT"),
        ("192.168.40.5:0", "relay.connect[0]: '192.168.40.5:0' is not IPV4:PORT"),
    ],
)
def test_connect_endpoints_outside_the_datacenter_are_refused_by_the_config(
    endpoint: str, message: str
) -> None:
    with pytest.raises(config.ConfigError) as caught:
        _config(connect=[endpoint])
    assert message in caught.value.render()


def test_relay_subnets_outside_the_domain_sources_are_refused_by_the_config() -> None:
    data = _config().model_dump(mode="json")
    data["regions"][REGION]["domains"][0]["source_cidrs"] = ["10.20.0.0/24"]
    with pytest.raises(config.ConfigError) as caught:
        config.parse_config(data)
    assert (
        "regions.eu-west-2.domains[0].source_cidrs: subnet 10.20.1.0/24 of domain 'market-data' is not "
        "inside its source_cidrs 10.20.0.0/24: members would drop what the relay sends"
        in caught.value.render()
    )


def test_compute_stacks_compose_the_relay_and_probes_from_the_config(
    example_app: Any, example_config: config.Config
) -> None:
    for region, stacks in example_app.stacks.items():
        settings = example_config.regions[region]
        compute = stacks.compute
        assert (compute.relay is None) == (settings.relay is None)
        assert (compute.probes is None) == (settings.probe is None)
        template = Template.from_stack(compute)
        services = template.find_resources("AWS::ECS::Service")
        assert len(services) == (1 if settings.relay else 0) + (2 if settings.probe else 0) + len(
            settings.streams
        )
        if compute.relay is not None:
            assert settings.relay is not None
            # Only the relay domain's subnets, found by CIDR, never by position.
            wanted = [s.cidr for s in settings.subnets_of(settings.relay.domain)]
            subnet_of = dict(
                zip((s.cidr for s in settings.subnets), stacks.network.network.subnets, strict=True)
            )
            relay = services[compute.get_logical_id(compute.relay.service.node.default_child)]
            subnets = relay["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"]
            assert subnets == [compute.resolve(subnet_of[cidr].subnet_id) for cidr in wanted]
            assert len(compute.relay.acl_entries) == 2 * len(settings.relay.datacenter_cidrs)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_health_check_passes_against_the_relay_started_with_the_task_command(built: Fixture) -> None:
    """Run the task's own command on loopback, probe it with the task's own health check,
    then stop it the way ECS does (SIGTERM) and expect a clean exit."""
    container = built.container()
    relay_port, metrics_port = _free_port(), _free_port()
    local = {
        "0.0.0.0:7400": f"127.0.0.1:{relay_port}",
        "127.0.0.1:9400": f"127.0.0.1:{metrics_port}",
        "eth0": "lo",
    }
    command = [local.get(arg, arg) for arg in container["Command"]]
    check = [arg.replace(":9400/", f":{metrics_port}/") for arg in container["HealthCheck"]["Command"][1:]]
    check[0] = sys.executable
    env = {**os.environ, RELAY_SECRET_ENV: "relay-secret-for-the-health-check-test-0123456789"}
    relay = subprocess.Popen(
        [sys.executable, "-m", "mcastkit", *command],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        healthy = False
        for _ in range(100):
            if subprocess.run(check, capture_output=True).returncode == 0:
                healthy = True
                break
            if relay.poll() is not None:
                break
            time.sleep(0.1)
        assert healthy, (
            relay.stdout.read().decode() if relay.poll() is not None else "relay never became healthy"
        )
    finally:
        relay.send_signal(signal.SIGTERM)
        output, _ = relay.communicate(timeout=30)
    assert relay.returncode == 0, output.decode()
    # Once the relay is gone, the same check fails: ECS would replace the task.
    assert subprocess.run(check, capture_output=True).returncode != 0


@pytest.mark.parametrize(
    "value",
    [
        "venue-md/relay",
        "arn:aws:secretsmanager:eu-west-2:111111111111:secret:venue-md/relay",
        "arn:aws:ssm:eu-west-2:111111111111:parameter/venue-md/relay-AbC123",
    ],
)
def test_a_secret_that_ecs_cannot_resolve_is_refused_by_the_config(value: str) -> None:
    with pytest.raises(config.ConfigError) as caught:
        _config(secret_arn=value)
    rendered = caught.value.render()
    assert "relay.secret_arn: must be the complete ARN of a Secrets Manager secret" in rendered
    assert value in rendered


def test_the_generated_secret_has_its_own_key_and_only_its_reader_may_decrypt(built: Fixture) -> None:
    """The key policy names the execution role, through Secrets Manager only (a key-policy grant to
    a role needs no IAM statement of its own)."""
    resources = built.template.to_json()["Resources"]
    key_id = resources[built.logical_id(built.relay.secret)]["Properties"]["KmsKeyId"]["Fn::GetAtt"][0]
    key = resources[key_id]
    assert key["Type"] == "AWS::KMS::Key" and key["Properties"]["EnableKeyRotation"] is True
    execution_role = built.logical_id(built.relay.task_definition.obtain_execution_role())
    readers = [
        statement
        for statement in key["Properties"]["KeyPolicy"]["Statement"]
        if statement["Principal"].get("AWS") == {"Fn::GetAtt": [execution_role, "Arn"]}
    ]
    assert [(s["Action"], s["Condition"]) for s in readers] == [
        ("kms:Decrypt", {"StringEquals": {"kms:ViaService": "secretsmanager.eu-west-2.amazonaws.com"}})
    ]
