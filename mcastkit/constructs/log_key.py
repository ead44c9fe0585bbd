"""A customer-managed KMS key that CloudWatch Logs may use for this account's log groups."""

from __future__ import annotations

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct


def allow_cloudwatch_logs(key: kms.Key) -> None:
    """Let CloudWatch Logs encrypt with ``key`` on behalf of this account's log groups only
    (CloudWatch Logs user guide, "Encrypt log data using AWS KMS": the encryption-context condition)."""
    stack = Stack.of(key)
    key.add_to_resource_policy(
        iam.PolicyStatement(
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=[
                "kms:Encrypt*",
                "kms:Decrypt*",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:Describe*",
            ],
            resources=["*"],
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                }
            },
        )
    )


def log_key(scope: Construct, id_: str, *, description: str) -> kms.Key:
    """A rotated, retained key for log groups (the logs outlive the stack, so does their key)."""
    key = kms.Key(
        scope, id_, description=description, enable_key_rotation=True, removal_policy=RemovalPolicy.RETAIN
    )
    allow_cloudwatch_logs(key)
    return key
