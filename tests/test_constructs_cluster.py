"""Igmpv2Cluster: ECS on EC2 from a hardened launch template whose user data forces IGMPv2."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk.assertions import Match, Template
from cdk_support import isolated_vpc_stack

from mcastkit.constructs.cluster import BOOTSTRAP_DIR, Igmpv2Cluster, bootstrap_user_data


def _stack() -> tuple[cdk.Stack, ec2.Vpc, ec2.SecurityGroup]:
    stack, vpc = isolated_vpc_stack()
    return stack, vpc, ec2.SecurityGroup(stack, "Members", vpc=vpc, allow_all_outbound=False)


@pytest.fixture(scope="module")
def template() -> Template:
    stack, vpc, group = _stack()
    Igmpv2Cluster(
        stack,
        "Cluster",
        vpc=vpc,
        subnets=vpc.isolated_subnets,
        security_group=group,
        instance_type="c6in.xlarge",
        min_capacity=2,
        max_capacity=5,
    )
    return Template.from_stack(stack)


def _launch_template_data(template: Template) -> dict[str, Any]:
    (resource,) = template.find_resources("AWS::EC2::LaunchTemplate").values()
    data = resource["Properties"]["LaunchTemplateData"]
    assert isinstance(data, dict)
    return data


def _user_data(template: Template) -> str:
    parts = _launch_template_data(template)["UserData"]["Fn::Base64"]["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else "<token>" for p in parts)


def test_launch_template_requires_imdsv2_with_hop_limit_1(template: Template) -> None:
    assert _launch_template_data(template)["MetadataOptions"] == {
        "HttpTokens": "required",
        "HttpPutResponseHopLimit": 1,
    }


def test_root_volume_is_encrypted_gp3(template: Template) -> None:
    (device,) = _launch_template_data(template)["BlockDeviceMappings"]
    assert device["Ebs"] == {
        "Encrypted": True,
        "VolumeType": "gp3",
        "VolumeSize": 30,
        "DeleteOnTermination": True,
    }


def test_no_public_ip_and_the_members_security_group(template: Template) -> None:
    (interface,) = _launch_template_data(template)["NetworkInterfaces"]
    assert interface["AssociatePublicIpAddress"] is False
    assert interface["DeviceIndex"] == 0
    (group,) = interface["Groups"]
    assert group["Fn::GetAtt"][0].startswith("Members")


def test_instance_type_and_the_ecs_optimized_ami_from_ssm_at_deploy_time(template: Template) -> None:
    data = _launch_template_data(template)
    assert data["InstanceType"] == "c6in.xlarge"
    parameter = data["ImageId"]["Ref"]
    template.has_parameter(
        parameter,
        {
            "Type": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>",
            "Default": "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id",
        },
    )


def test_launch_template_never_a_launch_configuration(template: Template) -> None:
    template.resource_count_is("AWS::AutoScaling::LaunchConfiguration", 0)
    template.has_resource_properties(
        "AWS::AutoScaling::AutoScalingGroup",
        {"MinSize": "2", "MaxSize": "5", "LaunchTemplate": Match.object_like({"Version": Match.any_value()})},
    )


def test_user_data_runs_the_bootstrap_scripts_in_order_then_joins_the_cluster(template: Template) -> None:
    user_data = _user_data(template)
    for script in ("igmpv2.sh", "socket-buffers.sh", "ecs-agent.sh"):
        assert (BOOTSTRAP_DIR / script).read_text().rstrip() in user_data
    run_igmp = user_data.index("bash /opt/mcastkit/bootstrap/igmpv2.sh")
    run_buffers = user_data.index("bash /opt/mcastkit/bootstrap/socket-buffers.sh")
    run_agent = user_data.index("bash /opt/mcastkit/bootstrap/ecs-agent.sh")
    join = user_data.index("ECS_CLUSTER=")
    # The host is ready (IGMPv2, socket buffer ceilings) before the agent starts placing tasks.
    assert run_igmp < run_buffers < run_agent < join


def test_user_data_reads_scripts_from_the_package_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    rendered = bootstrap_user_data(["igmpv2.sh"]).render()
    assert "force_igmp_version" in rendered


def test_missing_bootstrap_script_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"bootstrap script .*absent\.sh"):
        bootstrap_user_data(["absent.sh"], directory=tmp_path)


def test_user_data_is_valid_bash(tmp_path: Path) -> None:
    rendered = bootstrap_user_data(["igmpv2.sh", "ecs-agent.sh"]).render()
    script = tmp_path / "user-data.sh"
    script.write_text(rendered)
    subprocess.run(["bash", "-n", str(script)], check=True)


def test_ecs_agent_script_sets_its_keys_idempotently(tmp_path: Path) -> None:
    config = tmp_path / "ecs" / "ecs.config"
    config.parent.mkdir()
    config.write_text("ECS_AWSVPC_BLOCK_IMDS=false\nECS_RESERVED_MEMORY=256\n")
    env = {**os.environ, "MCASTKIT_ECS_CONFIG": str(config)}
    for _ in range(2):
        subprocess.run(
            ["bash", str(BOOTSTRAP_DIR / "ecs-agent.sh")], env=env, check=True, capture_output=True
        )
    lines = config.read_text().splitlines()
    assert "ECS_RESERVED_MEMORY=256" in lines
    assert lines.count("ECS_AWSVPC_BLOCK_IMDS=true") == 1
    assert "ECS_AWSVPC_BLOCK_IMDS=false" not in lines
    assert "ECS_ENABLE_TASK_IAM_ROLE=true" in lines


def test_container_insights_and_log_retention(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ECS::Cluster", {"ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}]}
    )
    template.has_resource(
        "AWS::Logs::LogGroup", {"Properties": {"RetentionInDays": 30}, "DeletionPolicy": "Retain"}
    )


def test_capacity_provider_is_the_cluster_default(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ECS::CapacityProvider",
        {
            "AutoScalingGroupProvider": Match.object_like(
                {"ManagedDraining": "ENABLED", "ManagedTerminationProtection": "DISABLED"}
            )
        },
    )
    template.has_resource_properties(
        "AWS::ECS::ClusterCapacityProviderAssociations",
        {"DefaultCapacityProviderStrategy": [Match.object_like({"CapacityProvider": Match.any_value()})]},
    )


def test_instance_role_grants_only_the_ecs_agent_calls(template: Template) -> None:
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": Match.object_like(
                {"Statement": [Match.object_like({"Principal": {"Service": "ec2.amazonaws.com"}})]}
            )
        },
    )
    template.resource_properties_count_is("AWS::IAM::Role", {"ManagedPolicyArns": Match.any_value()}, 0)
    actions: set[str] = set()
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            found = statement["Action"]
            actions |= set(found if isinstance(found, list) else [found])
    assert "*" not in actions and not any(a.endswith(":*") for a in actions)
    assert {"ecs:RegisterContainerInstance", "ecs:Poll"} <= actions


def test_bad_capacity_is_refused() -> None:
    stack, vpc, group = _stack()
    with pytest.raises(ValueError, match="min_capacity 3 is greater than max_capacity 2"):
        Igmpv2Cluster(
            stack,
            "C",
            vpc=vpc,
            subnets=vpc.isolated_subnets,
            security_group=group,
            min_capacity=3,
            max_capacity=2,
        )
