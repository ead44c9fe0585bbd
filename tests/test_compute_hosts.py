"""Where the hosts run and what they run: only in the zones their tasks use, the AMI and image of
the instance type's architecture, and a pinned AMI when the config names one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from mcastkit.config import parse_config
from mcastkit.stacks import add_region_stacks

REGION = "eu-west-2"


def _compute(
    example_data: dict[str, Any], tmp_path: Path, **capacity: Any
) -> tuple[Template, dict[str, Any]]:
    """London's compute template and its asset manifest, with ``capacity`` changed."""
    example_data["regions"] = {REGION: example_data["regions"][REGION]}
    example_data["regions"][REGION]["capacity"].update(capacity)
    example_data["customers"] = [
        {**c, "entitlements": [e for e in c["entitlements"] if e["region"] == REGION]}
        for c in example_data["customers"]
        if any(e["region"] == REGION for e in c["entitlements"])
    ]
    app = cdk.App(outdir=str(tmp_path))
    stacks = add_region_stacks(app, parse_config(example_data), REGION)
    assembly = app.synth()
    manifest_file = Path(assembly.directory) / f"{stacks.compute.stack_name}.assets.json"
    return Template.from_stack(stacks.compute), json.loads(manifest_file.read_text(encoding="utf-8"))


def _image_parameter(template: Template) -> str:
    (launch_template,) = template.find_resources("AWS::EC2::LaunchTemplate").values()
    image = launch_template["Properties"]["LaunchTemplateData"]["ImageId"]
    parameter = template.to_json()["Parameters"][image["Ref"]]
    return str(parameter["Default"])


def _platforms(manifest: dict[str, Any]) -> set[str]:
    return {image["source"].get("platform") for image in manifest["dockerImages"].values()}


def test_hosts_run_only_in_the_zones_of_the_tasks_domains(
    example_data: dict[str, Any], tmp_path: Path
) -> None:
    template, _ = _compute(example_data, tmp_path)
    (group,) = template.find_resources("AWS::AutoScaling::AutoScalingGroup").values()
    # market-data (relay and probe) has two subnets; reference-data's zone gets no host.
    assert len(group["Properties"]["VPCZoneIdentifier"]) == 2


def test_x86_hosts_get_the_x86_ami_and_an_amd64_image(example_data: dict[str, Any], tmp_path: Path) -> None:
    template, manifest = _compute(example_data, tmp_path)
    assert (
        _image_parameter(template) == "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"
    )
    assert _platforms(manifest) == {"linux/amd64"}


def test_graviton_hosts_get_the_arm_ami_and_an_arm64_image(
    example_data: dict[str, Any], tmp_path: Path
) -> None:
    template, manifest = _compute(example_data, tmp_path, instance_type="c7gn.large")
    assert (
        _image_parameter(template)
        == "/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id"
    )
    assert _platforms(manifest) == {"linux/arm64"}


def test_a_pinned_ami_is_the_hosts_image(example_data: dict[str, Any], tmp_path: Path) -> None:
    template, _ = _compute(example_data, tmp_path, ami="ami-0123456789abcdef0")
    (launch_template,) = template.find_resources("AWS::EC2::LaunchTemplate").values()
    assert launch_template["Properties"]["LaunchTemplateData"]["ImageId"] == "ami-0123456789abcdef0"
    assert not any(
        "optimized-ami" in json.dumps(p) for p in template.to_json().get("Parameters", {}).values()
    )


@pytest.mark.parametrize(
    ("capacity", "message"),
    [
        (
            {"instance_type": "c6in.large", "min": 1},
            "regions.eu-west-2.capacity.min: 1 host(s) of c6in.large",
        ),
        ({"instance_type": "m5zn.large"}, "m5zn.large is not in mcastkit's table"),
    ],
)
def test_a_capacity_that_cannot_place_the_tasks_is_refused(
    example_data: dict[str, Any], capacity: dict[str, Any], message: str
) -> None:
    from mcastkit.config import ConfigError

    example_data["regions"][REGION]["capacity"].update(capacity)
    with pytest.raises(ConfigError) as caught:
        parse_config(example_data)
    assert any(message in line for line in caught.value.messages), caught.value.messages


def test_an_instance_type_outside_the_table_is_accepted_with_its_interface_count(
    example_data: dict[str, Any],
) -> None:
    example_data["regions"][REGION]["capacity"].update(instance_type="m5zn.large", network_interfaces=3)
    assert parse_config(example_data).regions[REGION].capacity.task_slots == 2


def test_a_kit_cluster_of_graviton_hosts_gets_the_arm_ami(example_config: Any) -> None:
    from mcastkit.config import Capacity
    from mcastkit.onboard.kit import synth_template

    customer = example_config.customer("beta-capital")
    template = synth_template(example_config, customer, REGION, cluster=Capacity(instance_type="m7g.large"))
    (launch_template,) = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::EC2::LaunchTemplate"
    ]
    assert launch_template["Properties"]["LaunchTemplateData"]["InstanceType"] == "m7g.large"
    parameter = template["Parameters"][launch_template["Properties"]["LaunchTemplateData"]["ImageId"]["Ref"]]
    assert (
        parameter["Default"] == "/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id"
    )


def test_hosts_are_replaced_one_at_a_time_with_min_in_service(
    example_data: dict[str, Any], tmp_path: Path
) -> None:
    """A new AMI (resolved at every deploy unless pinned) replaces hosts: a new one starts first,
    so the relay's tasks move before their host goes."""
    template, _ = _compute(example_data, tmp_path)
    (group,) = template.find_resources("AWS::AutoScaling::AutoScalingGroup").values()
    update = group["UpdatePolicy"]["AutoScalingRollingUpdate"]
    assert (update["MaxBatchSize"], update["MinInstancesInService"]) == (1, 3)  # London: min 3, max 4
