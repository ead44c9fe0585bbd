"""What the hosts and tasks need from the account at deploy time, with where each is documented.

The hosts run in private subnets with no NAT and no internet gateway, so every AWS API they call
must have a VPC endpoint and an IAM grant. ``tests/test_prerequisites.py`` synthesizes the example
and asserts the templates provide every row; a new agent setting or task need belongs here first.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class Need(StrEnum):
    INTERFACE_ENDPOINT = "interface endpoint"
    GATEWAY_ENDPOINT = "gateway endpoint"
    HOST_ACTION = "instance role action"
    EXECUTION_ACTION = "task execution role action"
    AGENT_SETTING = "ECS agent setting"
    AGENT_SETTING_ABSENT = "ECS agent setting left unset"


@dataclass(frozen=True)
class Prerequisite:
    need: Need
    #: The endpoint service (``ecs``), the IAM action, or the agent setting (``KEY=VALUE``, or ``KEY``).
    value: str
    why: str
    source: str


_AGENT = "amazon-ecs-agent"
_ENDPOINTS_DOC = "Amazon ECS developer guide, 'Amazon ECS interface VPC endpoints'"
_ECR_DOC = "Amazon ECR user guide, 'Amazon ECR interface VPC endpoints'"

PREREQUISITES: Final[tuple[Prerequisite, ...]] = (
    Prerequisite(Need.INTERFACE_ENDPOINT, "ecs", "the agent registers and reports", _ENDPOINTS_DOC),
    Prerequisite(Need.INTERFACE_ENDPOINT, "ecs-agent", "the agent polls for tasks (ACS)", _ENDPOINTS_DOC),
    Prerequisite(Need.INTERFACE_ENDPOINT, "ecs-telemetry", "the agent sends metrics (TCS)", _ENDPOINTS_DOC),
    Prerequisite(Need.INTERFACE_ENDPOINT, "ecr.api", "image pull: authorization", _ECR_DOC),
    Prerequisite(Need.INTERFACE_ENDPOINT, "ecr.dkr", "image pull: manifests", _ECR_DOC),
    Prerequisite(Need.GATEWAY_ENDPOINT, "s3", "image pull: layers live in S3", _ECR_DOC),
    Prerequisite(
        Need.INTERFACE_ENDPOINT, "logs", "awslogs driver", "CloudWatch Logs user guide, VPC endpoints"
    ),
    Prerequisite(
        Need.INTERFACE_ENDPOINT,
        "secretsmanager",
        "the relay secret",
        "Secrets Manager user guide, VPC endpoint",
    ),
    *(
        Prerequisite(
            Need.HOST_ACTION,
            action,
            "the agent's calls",
            "ECS developer guide, 'Container instance IAM role'",
        )
        for action in (
            "ecs:RegisterContainerInstance",
            "ecs:DeregisterContainerInstance",
            "ecs:DiscoverPollEndpoint",
            "ecs:Poll",
            "ecs:StartTelemetrySession",
            "ecs:SubmitContainerStateChange",
            "ecs:SubmitTaskStateChange",
        )
    ),
    *(
        Prerequisite(
            Need.EXECUTION_ACTION,
            action,
            "pull the tools image",
            "ECS developer guide, 'Task execution IAM role'",
        )
        for action in (
            "ecr:GetAuthorizationToken",
            "ecr:BatchGetImage",
            "ecr:GetDownloadUrlForLayer",
            "ecr:BatchCheckLayerAvailability",
        )
    ),
    *(
        Prerequisite(
            Need.EXECUTION_ACTION, action, "awslogs with the execution role", "ECS developer guide, awslogs"
        )
        for action in ("logs:CreateLogStream", "logs:PutLogEvents")
    ),
    Prerequisite(
        Need.AGENT_SETTING,
        "ECS_AWSVPC_BLOCK_IMDS=true",
        "tasks cannot reach the host role's credentials",
        f"{_AGENT} README, ECS_AWSVPC_BLOCK_IMDS",
    ),
    Prerequisite(
        Need.AGENT_SETTING_ABSENT,
        "ECS_CONTAINER_INSTANCE_PROPAGATE_TAGS_FROM",
        "with ec2_instance the agent calls EC2 DescribeTags before registering; with no EC2 endpoint "
        "and no ec2:DescribeTags or ecs:TagResource it exits and is restarted forever",
        f"{_AGENT} agent/app/agent.go (registerContainerInstance); README",
    ),
)
