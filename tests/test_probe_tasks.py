"""ProbeTasks: the probe sender and receivers as ECS services, checked in a synthesized template."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import aws_ecs as ecs
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks
from ecs_support import ClusterStack, bare_service_args, findings_under, region_config

from mcastkit import config
from mcastkit.cli import build_parser
from mcastkit.constructs.probe_tasks import ProbeTasks
from mcastkit.constructs.relay_service import TOOLS_USER
from mcastkit.probe.sizing import MEMORY_MIB


def _region(**probe: Any) -> config.Region:
    return region_config(
        probe={"domain": "market-data", "group": "probe", "receivers": 3, "rate": 200, **probe}
    )


class Fixture(ClusterStack):
    """The cluster stack with ProbeTasks for market-data/probe, checked with cdk-nag."""

    def __init__(self, tmp: Path) -> None:
        region = _region()
        super().__init__(region, tmp)
        assert region.probe is not None
        self.probe_config = region.probe
        self.domain_subnets = self.subnets_of(region.probe.domain)
        self.probe = ProbeTasks(
            self.stack,
            "Probe",
            cluster=self.cluster.cluster,
            subnets=self.domain_subnets,
            probe=region.probe,
            domain=region.domain(region.probe.domain),
            members_security_group=self.members.security_group,
            capacity_provider=self.cluster.capacity_provider,
        )
        self.report = AwsSolutionsChecks().validate_scope(self.app)
        self.template = Template.from_stack(self.stack)
        self.resources = self.template.to_json()["Resources"]

    def container(self, task_definition: ecs.TaskDefinition) -> dict[str, Any]:
        (container,) = self.resources[self.logical_id(task_definition)]["Properties"]["ContainerDefinitions"]
        return dict(container)

    def service(self, service: ecs.Ec2Service) -> dict[str, Any]:
        return dict(self.resources[self.logical_id(service)])


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    return Fixture(tmp_path_factory.mktemp("probe"))


def test_receivers_and_sender_are_awsvpc_services_with_the_configured_counts(built: Fixture) -> None:
    for task_definition in (built.probe.receiver_task_definition, built.probe.sender_task_definition):
        properties = built.resources[built.logical_id(task_definition)]["Properties"]
        assert properties["NetworkMode"] == "awsvpc"
        assert properties["RequiresCompatibilities"] == ["EC2"]
    receivers = built.service(built.probe.receiver_service)["Properties"]
    sender = built.service(built.probe.sender_service)["Properties"]
    assert receivers["DesiredCount"] == 3
    assert sender["DesiredCount"] == 1
    assert receivers["TaskDefinition"] == {"Ref": built.logical_id(built.probe.receiver_task_definition)}
    assert sender["TaskDefinition"] == {"Ref": built.logical_id(built.probe.sender_task_definition)}


def test_receivers_exist_before_the_sender_starts(built: Fixture) -> None:
    sender = built.service(built.probe.sender_service)
    assert built.logical_id(built.probe.receiver_service) in sender["DependsOn"]


def test_services_are_private_in_the_domain_subnets_with_the_members_group(built: Fixture) -> None:
    for service in (built.probe.receiver_service, built.probe.sender_service):
        network = built.service(service)["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
        assert network["AssignPublicIp"] == "DISABLED"
        assert network["Subnets"] == [built.stack.resolve(s.subnet_id) for s in built.domain_subnets]
        assert network["SecurityGroups"] == [
            built.stack.resolve(built.members.security_group.security_group_id)
        ]


def test_commands_are_continuous_ones_the_probe_cli_accepts(built: Fixture) -> None:
    """The image's entry point is ``mcastkit``: each command is what follows it."""
    receiver, sender = (
        built.container(task_definition)
        for task_definition in (built.probe.receiver_task_definition, built.probe.sender_task_definition)
    )
    assert "EntryPoint" not in receiver and "EntryPoint" not in sender
    args = build_parser().parse_args(receiver["Command"])
    assert (args.command, args.probe_command) == ("probe", "recv")
    assert str(args.group) == "239.10.1.20:30020"
    # Count 0: an open-ended stream, one JSON report a minute, never timing out.
    assert (args.interface, args.count, args.report_every, args.timeout, args.json) == (
        "eth0",
        0,
        60,
        None,
        True,
    )
    send = build_parser().parse_args(sender["Command"])
    assert (send.command, send.probe_command) == ("probe", "send")
    assert str(send.group) == "239.10.1.20:30020"
    assert (send.interface, send.rate, send.count, str(send.size), send.json) == ("eth0", 200, 0, "64", True)
    assert send.ttl > 1


def test_containers_are_hardened_and_restart_in_place(built: Fixture) -> None:
    for task_definition in (built.probe.receiver_task_definition, built.probe.sender_task_definition):
        container = built.container(task_definition)
        assert container["User"] == TOOLS_USER
        assert container["ReadonlyRootFilesystem"] is True
        assert container["LinuxParameters"]["Capabilities"] == {"Drop": ["ALL"]}
        assert container["LinuxParameters"]["InitProcessEnabled"] is True
        assert container["RestartPolicy"] == {"Enabled": True, "RestartAttemptPeriod": 60}
        assert container["LogConfiguration"]["Options"]["awslogs-group"] == {
            "Ref": built.logical_id(built.probe.log_group)
        }
        assert "Secrets" not in container
    log_group = built.resources[built.logical_id(built.probe.log_group)]
    assert log_group["Properties"]["RetentionInDays"] == 14


def test_receiver_memory_covers_twice_an_intervals_latency_samples() -> None:
    for rate, floor in [(200, MEMORY_MIB + 1), (100_000, MEMORY_MIB + 92)]:  # 2 x 8 B x rate x 60 s
        region = _region(rate=rate)
        stack, _, common = bare_service_args()
        assert region.probe is not None
        probe = ProbeTasks(stack, "Probe", **common, probe=region.probe, domain=region.domain("market-data"))
        task_definition = probe.receiver_task_definition.node.default_child
        assert isinstance(task_definition, ecs.CfnTaskDefinition)
        (container,) = stack.resolve(task_definition.container_definitions)
        assert floor <= container["memory"] <= floor + 1


def test_cdk_nag_has_no_unacknowledged_findings_on_the_probes(built: Fixture) -> None:
    assert findings_under(built.report, "Test/Probe/") == []
    assert findings_under(built.report, "Test/Vpc/"), "the pack did not run"


@pytest.mark.parametrize(
    ("probe", "domain", "change", "message"),
    [
        ({}, "reference-data", {}, "probe.domain is 'market-data' but the domain given is 'reference-data'"),
        (
            {},
            "market-data",
            {"subnets": []},
            "no multicast subnet given for the probes of domain 'market-data'",
        ),
        ({}, "market-data", {"report_seconds": 0.5}, "report_seconds 0.5 is below 1"),
    ],
)
def test_inconsistent_arguments_are_refused(
    probe: dict[str, Any], domain: str, change: dict[str, Any], message: str
) -> None:
    region = _region(**probe)
    stack, _, common = bare_service_args()
    kwargs = {**common, "probe": region.probe, "domain": region.domain(domain)}
    with pytest.raises(ValueError, match=re.escape(message)):
        ProbeTasks(stack, "Probe", **{**kwargs, **change})


def test_unknown_group_is_refused_naming_the_known_ones() -> None:
    region = _region()
    probe = config.Probe(domain="market-data", group="no-such-group")
    stack, _, common = bare_service_args()
    with pytest.raises(ValueError, match=re.escape("'no-such-group' is not a group of domain 'market-data'")):
        ProbeTasks(stack, "Probe", **common, probe=probe, domain=region.domain("market-data"))
