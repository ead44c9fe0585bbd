"""Every deploy-time prerequisite of the hosts and tasks (mcastkit.stacks.prerequisites) is
provided by the synthesized templates of every region of the example."""

from __future__ import annotations

from fnmatch import fnmatchcase
from types import SimpleNamespace
from typing import Any

import pytest

from mcastkit.constructs.cluster import BOOTSTRAP_DIR
from mcastkit.stacks.prerequisites import PREREQUISITES, Need, Prerequisite


def _template(example_app: SimpleNamespace, region: str, kind: str) -> dict[str, Any]:
    stacks = example_app.stacks[region]
    stack = getattr(stacks, kind)
    template: dict[str, Any] = example_app.assembly.get_stack_by_name(stack.stack_name).template
    return template


def _of_type(template: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [r for r in template["Resources"].values() if r["Type"] == type_]


def _endpoint_services(template: dict[str, Any], region: str, endpoint_type: str) -> set[str]:
    """Service suffixes (``ecs``, ``ecr.dkr``...) of the VPC endpoints of one type."""
    found = set()
    for endpoint in _of_type(template, "AWS::EC2::VPCEndpoint"):
        props = endpoint["Properties"]
        if props.get("VpcEndpointType", "Gateway") != endpoint_type:
            continue
        name = props["ServiceName"]
        if isinstance(name, dict):  # {"Fn::Join": ["", ["com.amazonaws.", {"Ref": "AWS::Region"}, ".s3"]]}
            name = "".join(region if isinstance(p, dict) else p for p in name["Fn::Join"][1])
        found.add(name.removeprefix(f"com.amazonaws.{region}."))
    return found


def _role_actions(template: dict[str, Any], role_logical_prefix: str) -> set[str]:
    """Actions the policies attached to a role (logical id, or its prefix) allow."""
    actions: set[str] = set()
    for resource in _of_type(template, "AWS::IAM::Policy"):
        roles = [r.get("Ref", "") for r in resource["Properties"].get("Roles", [])]
        if not any(role.startswith(role_logical_prefix) for role in roles):
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Allow":
                listed = statement["Action"]
                actions |= set(listed if isinstance(listed, list) else [listed])
    return actions


def _granted(action: str, actions: set[str]) -> bool:
    return any(fnmatchcase(action, granted) for granted in actions)


def _agent_settings() -> list[str]:
    text = (BOOTSTRAP_DIR / "ecs-agent.sh").read_text(encoding="utf-8")
    start = text.index("settings=(")
    block = text[start : text.index(")", start)]
    return [line.strip().strip('"') for line in block.splitlines()[1:] if line.strip()]


def _provided(example_app: SimpleNamespace, region: str, need: Prerequisite) -> bool:
    network = _template(example_app, region, "network")
    compute = _template(example_app, region, "compute")
    match need.need:
        case Need.INTERFACE_ENDPOINT:
            return need.value in _endpoint_services(network, region, "Interface")
        case Need.GATEWAY_ENDPOINT:
            return need.value in _endpoint_services(network, region, "Gateway")
        case Need.HOST_ACTION:
            return _granted(need.value, _role_actions(compute, "ClusterInstanceRole"))
        case Need.EXECUTION_ACTION:
            # Every task definition's execution role: the relay's and both probes'.
            tasks = _of_type(compute, "AWS::ECS::TaskDefinition")
            roles = {task["Properties"]["ExecutionRoleArn"]["Fn::GetAtt"][0] for task in tasks}
            return bool(roles) and all(_granted(need.value, _role_actions(compute, role)) for role in roles)
        case Need.AGENT_SETTING:
            return need.value in _agent_settings()
        case Need.AGENT_SETTING_ABSENT:
            return not any(s.split("=")[0] == need.value for s in _agent_settings())
    return False


@pytest.mark.parametrize("need", PREREQUISITES, ids=[f"{p.need.value}: {p.value}" for p in PREREQUISITES])
def test_every_region_provides_the_prerequisite(example_app: SimpleNamespace, need: Prerequisite) -> None:
    for region in example_app.stacks:
        assert _provided(example_app, region, need), f"{region}: {need.need.value} {need.value} ({need.why})"


def test_the_checks_can_fail(example_app: SimpleNamespace) -> None:
    """The checkers are not vacuous: needs that the templates do not meet are reported as unmet."""
    region = next(iter(example_app.stacks))
    for missing in (
        Prerequisite(Need.INTERFACE_ENDPOINT, "sqs", "", ""),
        Prerequisite(Need.HOST_ACTION, "ec2:DescribeTags", "", ""),
        Prerequisite(Need.EXECUTION_ACTION, "kms:Decrypt", "", ""),
        Prerequisite(Need.AGENT_SETTING_ABSENT, "ECS_AWSVPC_BLOCK_IMDS", "", ""),
    ):
        assert not _provided(example_app, region, missing), missing
