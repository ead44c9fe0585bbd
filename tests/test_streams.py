"""Sequenced streams, infrastructure: the sequencer service, its EFS journal, the replay load balancer
and endpoint service, who may connect, and what a routine change does to them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_cdk.assertions import Template
from ecs_support import REGION, ClusterStack, bare_service_args, config_data, findings_under

from mcastkit import config
from mcastkit.cli import build_parser
from mcastkit.config.names import NFS_PORT, stream_key
from mcastkit.constructs.relay_service import TOOLS_USER
from mcastkit.constructs.replay_access import ReplayAccess
from mcastkit.constructs.replay_endpoint import ReplayEndpoint
from mcastkit.constructs.sequencer_service import JOURNAL_MOUNT, SequencerService
from mcastkit.constructs.stream_journal import JOURNAL_GID, JOURNAL_UID, StreamJournal
from mcastkit.plan.diff import Action, ResourceChange, plan
from mcastkit.plan.impact import impacts
from mcastkit.plan.templates import Templates, provider_templates
from mcastkit.stacks import RegionStacks

ROOT = Path(__file__).resolve().parent.parent
LONDON = "eu-west-2"
VPC_CIDR = "10.20.0.0/16"
#: The customers of market-data in London (the example): the only principals md-seq may allow.
ENTITLED = ["arn:aws:iam::222222222222:root", "arn:aws:iam::333333333333:root"]


@pytest.fixture(scope="module")
def london(example_app: Any) -> RegionStacks:
    stacks: RegionStacks = example_app.stacks[LONDON]
    return stacks


@pytest.fixture(scope="module")
def templates(london: RegionStacks) -> dict[str, dict[str, Any]]:
    return {
        kind: Template.from_stack(getattr(london, kind)).to_json()
        for kind in ("network", "sharing", "compute")
    }


def _of_type(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == type_}


def _one(template: dict[str, Any], type_: str) -> tuple[str, dict[str, Any]]:
    [(logical_id, resource)] = _of_type(template, type_).items()
    return logical_id, resource


def _sequencer(london: RegionStacks, templates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    service = london.compute.sequencers["md-seq"].service
    resource: dict[str, Any] = templates["compute"]["Resources"][
        london.compute.get_logical_id(service.node.default_child)
    ]
    return resource


def _container(london: RegionStacks, templates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    task = london.compute.sequencers["md-seq"].task_definition
    resource = templates["compute"]["Resources"][london.compute.get_logical_id(task.node.default_child)]
    (container,) = resource["Properties"]["ContainerDefinitions"]
    return dict(container)


# The sequencer service ----------------------------------------------------------------------------


def test_exactly_one_sequencer_stopped_before_its_successor(
    london: RegionStacks, templates: dict[str, dict[str, Any]]
) -> None:
    props = _sequencer(london, templates)["Properties"]
    assert props["DesiredCount"] == 1
    deployment = props["DeploymentConfiguration"]
    assert (deployment["MinimumHealthyPercent"], deployment["MaximumPercent"]) == (0, 100)
    assert deployment["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    network = props["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network["AssignPublicIp"] == "DISABLED"
    settings = london.compute.sequencers["md-seq"]
    assert network["SecurityGroups"][0] == london.compute.resolve(settings.security_group.security_group_id)
    assert len(network["SecurityGroups"]) == 2  # and the members' (multicast in and out)
    # Registered with its target group by container and port: the replay port.
    [registration] = props["LoadBalancers"]
    assert (registration["ContainerName"], registration["ContainerPort"]) == ("Sequencer", 17001)


def test_the_sequencer_starts_after_its_journals_nfs_rule(
    london: RegionStacks, templates: dict[str, dict[str, Any]]
) -> None:
    resources = templates["compute"]["Resources"]
    nfs_rules = [
        logical_id
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::EC2::SecurityGroupIngress"
        and resource["Properties"].get("FromPort") == 2049
    ]
    assert nfs_rules, "the journal's NFS ingress rule is made in the compute stack"
    assert set(nfs_rules) <= set(_sequencer(london, templates)["DependsOn"])


def test_the_command_is_the_sequencers_and_its_cli_accepts_it(
    london: RegionStacks, templates: dict[str, dict[str, Any]]
) -> None:
    command = _container(london, templates)["Command"]
    assert command == [
        "stream", "sequencer",
        "--in", "239.10.1.1:30001", "--in", "239.10.1.2:30002",
        "--interface", "eth0",
        "--out", "239.10.1.10:30010",
        "--session", "md-seq",
        "--journal", JOURNAL_MOUNT,
        "--retransmit", "0.0.0.0:17002",
        "--replay", "0.0.0.0:17001",
        "--fsync", "interval",
        "--ttl", "8",
        "--emf", "venue-md-stream-md-seq",
    ]  # fmt: skip
    args = build_parser().parse_args(command)
    assert (args.command, args.stream_command) == ("stream", "sequencer")


def test_the_container_is_hardened_mounts_the_journal_and_is_checked_on_the_replay_port(
    london: RegionStacks, templates: dict[str, dict[str, Any]]
) -> None:
    container = _container(london, templates)
    assert container["User"] == TOOLS_USER == f"{JOURNAL_UID}:{JOURNAL_GID}"
    assert container["ReadonlyRootFilesystem"] is True
    assert container["LinuxParameters"]["Capabilities"] == {"Drop": ["ALL"]}
    assert container["MountPoints"] == [
        {"ContainerPath": "/journal", "ReadOnly": False, "SourceVolume": "journal"}
    ]
    assert "127.0.0.1', 17001" in container["HealthCheck"]["Command"][-1]
    assert sorted((m["ContainerPort"], m["Protocol"]) for m in container["PortMappings"]) == [
        (17001, "tcp"),
        (17002, "udp"),
    ]


def test_the_journal_is_mounted_with_tls_and_iam_through_its_access_point(
    london: RegionStacks, templates: dict[str, dict[str, Any]]
) -> None:
    task = london.compute.sequencers["md-seq"].task_definition
    props = templates["compute"]["Resources"][london.compute.get_logical_id(task.node.default_child)][
        "Properties"
    ]
    assert props["NetworkMode"] == "awsvpc"
    [volume] = props["Volumes"]
    efs = volume["EFSVolumeConfiguration"]
    assert efs["TransitEncryption"] == "ENABLED"
    assert efs["AuthorizationConfig"]["IAM"] == "ENABLED"
    assert "JournalMdSeqAccessPoint" in json.dumps(efs["AuthorizationConfig"]["AccessPointId"])
    assert "JournalMdSeqFileSystem" in json.dumps(efs["FilesystemId"])
    # The task role may mount and write this file system, through this access point, and nothing else.
    role = london.compute.resolve(task.task_role.role_name)
    policies = [
        p
        for p in _of_type(templates["compute"], "AWS::IAM::Policy").values()
        if role in p["Properties"]["Roles"]
    ]
    [statement] = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    assert statement["Action"] == ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    assert "Arn" in json.dumps(statement["Resource"]) and "*" not in json.dumps(statement["Resource"])
    condition = statement["Condition"]["StringEquals"]["elasticfilesystem:AccessPointArn"]
    assert "AccessPoint" in json.dumps(condition)


def test_the_relay_no_longer_emits_to_the_sequenced_group(
    london: RegionStacks, templates: dict[str, dict[str, Any]]
) -> None:
    assert london.compute.relay is not None
    task = london.compute.relay.task_definition
    [container] = templates["compute"]["Resources"][london.compute.get_logical_id(task.node.default_child)][
        "Properties"
    ]["ContainerDefinitions"]
    allowed = [container["Command"][i + 1] for i, a in enumerate(container["Command"]) if a == "--allow"]
    assert allowed == ["239.10.1.1:30001", "239.10.1.2:30002", "239.10.1.3:30003"]


# Security groups and the network ACL ---------------------------------------------------------------


def test_the_sequencer_admits_replay_from_its_load_balancer_and_re_requests_from_the_vpc_only(
    london: RegionStacks, templates: dict[str, dict[str, Any]]
) -> None:
    compute = templates["compute"]
    sequencer = london.compute.sequencers["md-seq"]
    group_id = london.compute.get_logical_id(sequencer.security_group.node.default_child)
    group = compute["Resources"][group_id]["Properties"]
    assert [(r["CidrIp"], r["IpProtocol"], r["FromPort"]) for r in group["SecurityGroupIngress"]] == [
        (VPC_CIDR, "udp", 17002)
    ]
    ingress = [
        r["Properties"]
        for r in _of_type(compute, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [group_id, "GroupId"]}
    ]
    [replay] = ingress
    assert (replay["IpProtocol"], replay["FromPort"], replay["ToPort"]) == ("tcp", 17001, 17001)
    assert "ReplayEndpointMdSeqSecurityGroup" in json.dumps(replay["SourceSecurityGroupId"])
    # Out: NFS, inline (see below), to the VPC only; the journal admits it from this group only.
    assert [(e["CidrIp"], e["IpProtocol"], e["FromPort"]) for e in group["SecurityGroupEgress"]] == [
        (VPC_CIDR, "tcp", NFS_PORT)
    ]
    assert not [
        r
        for r in _of_type(compute, "AWS::EC2::SecurityGroupEgress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [group_id, "GroupId"]}
    ]
    [nfs] = [
        r["Properties"]
        for r in _of_type(compute, "AWS::EC2::SecurityGroupIngress").values()
        if "JournalMdSeqSecurityGroup" in json.dumps(r["Properties"]["GroupId"])
    ]
    assert (nfs["FromPort"], nfs["SourceSecurityGroupId"]) == (
        NFS_PORT,
        {"Fn::GetAtt": [group_id, "GroupId"]},
    )


def test_the_load_balancer_sends_only_replay_and_the_journal_nothing(
    templates: dict[str, dict[str, Any]],
) -> None:
    network = templates["network"]

    def group(prefix: str) -> dict[str, Any]:
        [found] = [r for k, r in _of_type(network, "AWS::EC2::SecurityGroup").items() if k.startswith(prefix)]
        assert "SecurityGroupIngress" not in found["Properties"], prefix
        return dict(found["Properties"])

    [replay] = group("ReplayEndpointMdSeqSecurityGroup")["SecurityGroupEgress"]
    assert (replay["CidrIp"], replay["IpProtocol"], replay["FromPort"], replay["ToPort"]) == (
        VPC_CIDR,
        "tcp",
        17001,
        17001,
    )
    [placeholder] = group("JournalMdSeqSecurityGroup")["SecurityGroupEgress"]
    assert placeholder["CidrIp"] == "255.255.255.255/32"  # CDK's "no traffic" rule


def test_no_security_group_keeps_the_default_allow_all_egress(example_app: Any) -> None:
    """EC2 gives a group without inline egress rules an allow-all one, which egress rules made as
    resources of their own (those naming another group) do not remove: every group needs one inline."""
    for stack in example_app.assembly.stacks:
        for logical_id, resource in stack.template["Resources"].items():
            if resource["Type"] == "AWS::EC2::SecurityGroup":
                assert resource["Properties"].get("SecurityGroupEgress"), (stack.stack_name, logical_id)


def test_the_network_acl_admits_the_streams_within_the_vpc_only(templates: dict[str, dict[str, Any]]) -> None:
    entries = [
        r["Properties"]
        for k, r in _of_type(templates["network"], "AWS::EC2::NetworkAclEntry").items()
        if k.startswith("StreamAcl")
    ]
    assert {e["CidrBlock"] for e in entries} == {VPC_CIDR}
    found = sorted(
        (e["Egress"], e["Protocol"], e["PortRange"]["From"], e["PortRange"]["To"]) for e in entries
    )
    assert found == sorted(
        (egress, protocol, first, last)
        for egress in (False, True)
        for protocol, first, last in ((6, 17001, 17001), (6, NFS_PORT, NFS_PORT), (17, 1024, 65535))
    )
    assert all(10 <= e["RuleNumber"] < 50 for e in entries)


# The journal ----------------------------------------------------------------------------------------


def test_the_journal_is_encrypted_retained_backed_up_and_denies_clients_without_tls(
    templates: dict[str, dict[str, Any]],
) -> None:
    _, fs = _one(templates["network"], "AWS::EFS::FileSystem")
    assert (fs["DeletionPolicy"], fs["UpdateReplacePolicy"]) == ("Retain", "Retain")
    props = fs["Properties"]
    assert props["Encrypted"] is True
    assert props["BackupPolicy"] == {"Status": "ENABLED"}
    assert props["PerformanceMode"] == "generalPurpose"
    # A policy of its own (so EFS's default, open to any client that reaches a mount target, is not in
    # effect) that allows nothing: access comes from the task role's identity policy only.
    statements = props["FileSystemPolicy"]["Statement"]
    assert [s["Effect"] for s in statements] == ["Deny"]
    assert statements[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    _, access_point = _one(templates["network"], "AWS::EFS::AccessPoint")
    assert access_point["Properties"]["PosixUser"] == {"Uid": str(JOURNAL_UID), "Gid": str(JOURNAL_UID)}
    assert access_point["Properties"]["RootDirectory"]["CreationInfo"]["Permissions"] == "750"


def test_one_mount_target_per_zone_of_the_streams_domain_named_after_its_subnet(
    templates: dict[str, dict[str, Any]],
) -> None:
    targets = _of_type(templates["network"], "AWS::EFS::MountTarget")
    assert sorted(k[: len("JournalMdSeqMountTarget10200024")] for k in targets) == [
        "JournalMdSeqMountTarget10200024",
        "JournalMdSeqMountTarget10201024",
    ]
    for target in targets.values():
        assert "JournalMdSeqSecurityGroup" in json.dumps(target["Properties"]["SecurityGroups"])


# PrivateLink -----------------------------------------------------------------------------------------


def test_an_internal_cross_zone_load_balancer_in_every_zone_behind_an_endpoint_service(
    templates: dict[str, dict[str, Any]],
) -> None:
    network = templates["network"]
    nlb_id, nlb = _one(network, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    props = nlb["Properties"]
    assert (props["Type"], props["Scheme"]) == ("network", "internal")
    assert len(props["Subnets"]) == 3  # every zone of the VPC: customers' endpoints may use any of them
    assert {"Key": "load_balancing.cross_zone.enabled", "Value": "true"} in props["LoadBalancerAttributes"]
    assert props["EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic"] == "off"
    _, service = _one(network, "AWS::EC2::VPCEndpointService")
    assert service["Properties"]["AcceptanceRequired"] is False
    assert service["Properties"]["NetworkLoadBalancerArns"] == [{"Ref": nlb_id}]
    # Nobody is allowed here: that is the sharing stack's, which changes with the customers.
    assert not _of_type(network, "AWS::EC2::VPCEndpointServicePermissions")
    outputs = network["Outputs"]
    for attribute in ("Id", "Name"):
        key = stream_key("md-seq", attribute)
        assert outputs[key]["Export"]["Name"] == f"venue-md-{LONDON}-network-{key}"
    assert "com.amazonaws.vpce" in json.dumps(outputs[stream_key("md-seq", "Name")]["Value"])


def test_the_listener_and_target_group_are_the_sequencers(templates: dict[str, dict[str, Any]]) -> None:
    compute = templates["compute"]
    target_group_id, target_group = _one(compute, "AWS::ElasticLoadBalancingV2::TargetGroup")
    props = target_group["Properties"]
    assert (props["TargetType"], props["Protocol"], props["Port"], props["HealthCheckProtocol"]) == (
        "ip",
        "TCP",
        17001,
        "TCP",
    )
    _, listener = _one(compute, "AWS::ElasticLoadBalancingV2::Listener")
    assert (listener["Properties"]["Port"], listener["Properties"]["Protocol"]) == (17001, "TCP")
    assert listener["Properties"]["DefaultActions"] == [
        {"TargetGroupArn": {"Ref": target_group_id}, "Type": "forward"}
    ]
    assert "ReplayEndpointMdSeqLoadBalancer" in json.dumps(listener["Properties"]["LoadBalancerArn"])


def test_the_endpoint_service_allows_exactly_the_entitled_accounts(
    templates: dict[str, dict[str, Any]],
) -> None:
    _, permissions = _one(templates["sharing"], "AWS::EC2::VPCEndpointServicePermissions")
    props = permissions["Properties"]
    assert props["AllowedPrincipals"] == ENTITLED
    # Not the OU customer (Tokyo only), and nobody of another domain only.
    assert "organizations" not in json.dumps(props)
    assert props["ServiceId"] == {
        "Fn::ImportValue": f"venue-md-{LONDON}-network-{stream_key('md-seq', 'Id')}"
    }


# Deploys: what a routine change does ---------------------------------------------------------------


def _london_only() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "config" / "example.yaml").read_text(encoding="utf-8"))
    del data["regions"]["ap-northeast-1"]
    data["customers"] = [c for c in data["customers"] if c["name"] != "venue-analytics"]
    for customer in data["customers"]:
        customer["entitlements"] = [e for e in customer["entitlements"] if e["region"] == LONDON]
    return data


@pytest.fixture(scope="module")
def synthesized() -> Any:
    cache: dict[str, Templates] = {}

    def synth(data: dict[str, Any]) -> Templates:
        key = json.dumps(data, sort_keys=True)
        if key not in cache:
            cache[key] = provider_templates(config.parse_config(data))
        return cache[key]

    return synth


def test_adding_a_customer_updates_only_the_share_and_the_endpoint_permissions(synthesized: Any) -> None:
    before = _london_only()
    after = copy.deepcopy(before)
    after["customers"].append(
        {
            "name": "gamma",
            "principal": "444444444444",
            "entitlements": [{"region": LONDON, "domains": ["market-data"]}],
        }
    )
    old, new = synthesized(before), synthesized(after)
    result = plan(old, new)
    assert {(c.type, c.action) for c in result.changes} == {
        ("AWS::RAM::ResourceShare", Action.UPDATE),
        ("AWS::EC2::VPCEndpointServicePermissions", Action.UPDATE),
    }
    [permissions] = [c for c in result.changes if c.type == "AWS::EC2::VPCEndpointServicePermissions"]
    assert permissions.why == "AllowedPrincipals" and permissions.stack == f"venue-md-{LONDON}-sharing"
    sharing = new[f"venue-md-{LONDON}-sharing"]["Resources"][permissions.logical_id]["Properties"]
    assert sharing["AllowedPrincipals"] == [*ENTITLED, "arn:aws:iam::444444444444:root"]
    # The load balancer and the endpoint service keep their logical ids and their text.
    network = f"venue-md-{LONDON}-network"
    assert old[network] == new[network]
    assert result.safe


def test_a_customer_of_another_domain_is_not_allowed_to_the_stream(synthesized: Any) -> None:
    after = _london_only()
    after["customers"].append(
        {
            "name": "delta",
            "principal": "555555555555",
            "entitlements": [{"region": LONDON, "domains": ["reference-data"]}],
        }
    )
    result = plan(synthesized(_london_only()), synthesized(after))
    assert {c.type for c in result.changes} == {"AWS::RAM::ResourceShare"}


def test_removing_the_stream_is_refused_and_says_who_loses_replay(synthesized: Any) -> None:
    before = _london_only()
    after = copy.deepcopy(before)
    del after["regions"][LONDON]["streams"]
    result = plan(synthesized(before), synthesized(after))
    refused = {c.type for c in result.refused}
    assert refused == {
        "AWS::EFS::FileSystem",
        "AWS::EC2::VPCEndpointService",
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
    }
    assert not result.safe
    lost = {(i.customer, i.what, i.how_long) for i in impacts(result, config.parse_config(before))}
    assert ("beta-capital", "stream md-seq's replay: its endpoint service", "for good") in lost
    assert ("alpha-trading", "stream md-seq's replay: its endpoint service", "for good") in lost


def test_a_replaced_endpoint_service_costs_its_customers_a_new_endpoint(
    example_config: config.Config,
) -> None:
    change = ResourceChange(
        f"venue-md-{LONDON}-network",
        "ReplayEndpointMdSeqEndpointService4943723A",
        "AWS::EC2::VPCEndpointService",
        Action.REPLACE,
        path=f"venue-md-{LONDON}-network/ReplayEndpointMdSeq/EndpointService",
    )
    result = plan({}, {})
    result.changes = [change]
    found = impacts(result, example_config)
    assert sorted((i.customer, i.domain) for i in found) == [
        ("alpha-trading", "market-data"),
        ("beta-capital", "market-data"),
    ]
    assert all("interface endpoint again" in i.how_long for i in found)


# The constructs alone -------------------------------------------------------------------------------


class Fixture(ClusterStack):
    """The cluster stack with one stream's journal, replay endpoint and sequencer, checked with cdk-nag."""

    def __init__(self, tmp: Path) -> None:
        from cdk_nag import AwsSolutionsChecks

        region = config.parse_config(
            config_data(
                streams=[{"name": "md", "domain": "market-data", "inputs": ["btc-book"], "output": "trades"}]
            )
        ).regions[REGION]
        super().__init__(region, tmp)
        stream = region.streams[0]
        subnets = self.subnets_of("market-data")
        self.journal = StreamJournal(self.stack, "Journal", vpc=self.vpc, subnets=subnets, stream="md")
        self.endpoint = ReplayEndpoint(
            self.stack, "Endpoint", vpc=self.vpc, subnets=subnets, vpc_cidr=region.vpc_cidr, stream=stream
        )
        self.sequencer = SequencerService(
            self.stack,
            "Sequencer",
            cluster=self.cluster.cluster,
            vpc=self.vpc,
            vpc_cidr=region.vpc_cidr,
            subnets=subnets,
            stream=stream,
            domain=region.domain("market-data"),
            members_security_group=self.members.security_group,
            journal=self.journal,
            load_balancer=self.endpoint.load_balancer,
            load_balancer_security_group=self.endpoint.security_group,
            capacity_provider=self.cluster.capacity_provider,
        )
        ReplayAccess(self.stack, "Access", service_id=self.endpoint.service_id, accounts=["222222222222"])
        self.report = AwsSolutionsChecks().validate_scope(self.app)


def test_the_constructs_have_no_unacknowledged_cdk_nag_finding(tmp_path: Path) -> None:
    fixture = Fixture(tmp_path)
    for prefix in ("Test/Journal/", "Test/Endpoint/", "Test/Sequencer/", "Test/Access/"):
        assert findings_under(fixture.report, prefix) == [], prefix
    assert any("VPC7" in finding for finding in findings_under(fixture.report, "Test/Vpc"))  # the pack ran


@pytest.mark.parametrize(
    ("accounts", "message"),
    [
        ([], "no accounts"),
        (["222222222222", "222222222222"], "repeated accounts"),
        (["arn:aws:organizations::111111111111:ou/o-exampleorg1/ou-ab12-cdef3456"], "PrivateLink has no OU"),
    ],
)
def test_replay_access_refuses_what_privatelink_cannot_allow(accounts: list[str], message: str) -> None:
    stack, _, _ = bare_service_args()
    with pytest.raises(ValueError, match=message):
        ReplayAccess(stack, "Access", service_id="vpce-svc-0123456789abcdef0", accounts=accounts)


def test_the_sequencer_refuses_groups_its_domain_does_not_have(tmp_path: Path) -> None:
    fixture = Fixture(tmp_path)
    region = fixture.region
    stream = region.streams[0].model_copy(update={"inputs": ["instruments"]})
    with pytest.raises(ValueError, match=r"\['instruments'\] are not groups of domain 'market-data'"):
        SequencerService(
            fixture.stack,
            "Other",
            cluster=fixture.cluster.cluster,
            vpc=fixture.vpc,
            vpc_cidr=region.vpc_cidr,
            subnets=fixture.subnets_of("market-data"),
            stream=stream,
            domain=region.domain("market-data"),
            members_security_group=fixture.members.security_group,
            journal=fixture.journal,
            load_balancer=fixture.endpoint.load_balancer,
            load_balancer_security_group=fixture.endpoint.security_group,
        )


def test_the_hosts_run_where_the_sequencer_runs_and_the_relay_leaves_its_group_alone() -> None:
    data = config_data(
        capacity={"instance_type": "c6in.large", "min": 1, "max": 2},
        streams=[{"name": "md", "domain": "market-data", "inputs": ["btc-book"], "output": "trades"}],
    )
    region = config.parse_config(data).regions[REGION]
    assert {s.domain for s in region.host_subnets} == {"market-data"}
    assert [g.name for g in region.relayed("market-data").groups] == ["btc-book"]
    assert [g.name for g in region.relayed("reference-data").groups] == ["instruments"]
