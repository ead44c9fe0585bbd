"""Who hears when the feed stops: the alarm topic, the alarms, the dashboard of a region.

Three small constructs, composed by the compute stack:

- :class:`AlarmTopic`: an SNS topic encrypted with a key of its own, and the subscriptions of
  ``monitoring.email`` and ``monitoring.https``;
- :class:`MetricAlarms`: one ``AWS::CloudWatch::Alarm`` per :class:`AlarmSpec`, to the topic
  when it fires and when it clears;
- :class:`Dashboard`: the ``AWS::CloudWatch::Dashboard`` of :func:`region_dashboard`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from mcastkit.config.models import Monitoring
from mcastkit.monitoring.alarms import AlarmSpec

CLOUDWATCH = "cloudwatch.amazonaws.com"


class AlarmTopic(Construct):
    """The topic alarms publish to, and its subscribers.

    An encrypted topic needs a customer-managed key whose policy lets CloudWatch use it: the
    AWS-managed ``alias/aws/sns`` key cannot be shared, and an alarm whose topic CloudWatch
    cannot encrypt for drops its notification (SNS developer guide, "Enable compatibility between
    event sources from AWS services and encrypted topics"). The topic policy (``enforce_ssl``
    makes one) replaces SNS's default policy, so it must also let CloudWatch publish. Both are
    limited to this account's alarms named ``{alarm_prefix}-*`` (``aws:SourceAccount``,
    ``aws:SourceArn``), against the confused deputy.

    Attributes:
        key, topic.
    """

    def __init__(
        self, scope: Construct, id_: str, *, monitoring: Monitoring, alarm_prefix: str, description: str
    ) -> None:
        super().__init__(scope, id_)
        stack = cdk.Stack.of(self)
        alarms = stack.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=f"{alarm_prefix}-*",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        from_alarms = {
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {"aws:SourceArn": alarms},
        }
        # Notifications are not stored: the key can go with the stack (after KMS's waiting period).
        self.key = kms.Key(
            self,
            "Key",
            description=description,
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.DESTROY,
            pending_window=cdk.Duration.days(7),
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(CLOUDWATCH)],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions=from_alarms,
            )
        )
        self.topic = sns.Topic(self, "Topic", master_key=self.key, enforce_ssl=True)
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(CLOUDWATCH)],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions=from_alarms,
            )
        )
        # Keyed by the endpoint, not its place in the list: removing one address must not replace
        # (and ask to confirm again) every subscription after it.
        for protocol, endpoints in (
            (sns.SubscriptionProtocol.EMAIL, monitoring.email),
            (sns.SubscriptionProtocol.HTTPS, monitoring.https),
        ):
            for endpoint in endpoints:
                digest = hashlib.sha256(endpoint.encode()).hexdigest()[:12]
                sns.Subscription(
                    self,
                    f"{protocol.value.title()}{digest}",
                    topic=self.topic,
                    protocol=protocol,
                    endpoint=endpoint,
                )


class MetricAlarms(Construct):
    """One alarm per spec, named ``{prefix}-{key}``, notifying ``topic`` on ALARM and on OK.

    Attributes:
        alarms: the ``CfnAlarm`` by spec key.
    """

    def __init__(
        self, scope: Construct, id_: str, *, specs: Sequence[AlarmSpec], topic: sns.ITopic, prefix: str
    ) -> None:
        super().__init__(scope, id_)
        self.alarms: dict[str, cloudwatch.CfnAlarm] = {}
        for spec in specs:
            metric = spec.metric
            self.alarms[spec.key] = cloudwatch.CfnAlarm(
                self,
                spec.key,
                alarm_name=f"{prefix}-{spec.key}",
                alarm_description=spec.description,
                namespace=metric.namespace,
                metric_name=metric.name,
                dimensions=[
                    cloudwatch.CfnAlarm.DimensionProperty(name=k, value=v) for k, v in metric.dimensions
                ],
                statistic=metric.statistic,
                period=metric.period,
                evaluation_periods=spec.periods,
                datapoints_to_alarm=spec.datapoints,
                threshold=spec.threshold,
                comparison_operator=spec.comparison,
                treat_missing_data=spec.missing,
                alarm_actions=[topic.topic_arn],
                ok_actions=[topic.topic_arn],
            )


class Dashboard(Construct):
    """The ``AWS::CloudWatch::Dashboard`` named ``name`` showing ``body`` (tokens resolved)."""

    def __init__(self, scope: Construct, id_: str, *, name: str, body: dict[str, Any]) -> None:
        super().__init__(scope, id_)
        self.dashboard = cloudwatch.CfnDashboard(
            self, "Dashboard", dashboard_name=name, dashboard_body=cdk.Stack.of(self).to_json_string(body)
        )
