"""Logs and secrets at rest use customer-managed keys that rotate."""

from __future__ import annotations

from types import SimpleNamespace


def test_every_log_group_of_the_example_has_a_rotated_customer_managed_key(
    example_app: SimpleNamespace,
) -> None:
    groups = 0
    for stack in example_app.assembly.stacks:
        resources = stack.template["Resources"]
        for logical_id, resource in resources.items():
            if resource["Type"] != "AWS::Logs::LogGroup":
                continue
            groups += 1
            key = resource["Properties"].get("KmsKeyId")
            assert key is not None, f"{stack.stack_name} {logical_id} has no key"
            key_resource = resources[key["Fn::GetAtt"][0]]
            assert key_resource["Type"] == "AWS::KMS::Key"
            assert key_resource["Properties"]["EnableKeyRotation"] is True
    # Flow logs in each network stack; cluster, relay and probe logs in London's compute stack.
    assert groups >= 2 + 3
