"""CloudWatch: the metric lines the relay, probe and sequencer print, and the alarms, topic and
dashboard the compute stack builds from the same catalogue."""

from __future__ import annotations

import io
import json
import re
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aws_cdk.assertions import Template
from probe_support import LOOPBACK, needs_loopback_multicast, random_group

from mcastkit.cli import Console, main
from mcastkit.config import Config
from mcastkit.exit import ExitStatus
from mcastkit.monitoring import emf
from mcastkit.monitoring.dashboard import GRID_WIDTH, layout
from mcastkit.relay.metrics import RelayStats, emf_sampler
from mcastkit.stream.sequencer import emf_sampler as sequencer_sampler

ROOT = Path(__file__).resolve().parent.parent
LONDON, TOKYO = "eu-west-2", "ap-northeast-1"

#: CloudWatch's units (PutMetricData API reference, MetricDatum.Unit).
UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
    "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
    "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
    "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
}  # fmt: skip


def emf_problems(doc: dict[str, Any]) -> list[str]:
    """What CloudWatch would refuse or ignore in an EMF document (the specification's rules:
    ``_aws`` with a millisecond ``Timestamp`` and 1 directive or more; each directive's
    namespace, up to 30 dimensions per set naming top-level strings, up to 100 metrics naming
    top-level numbers, with valid units)."""
    meta = doc.get("_aws")
    if not isinstance(meta, dict):
        return ["no _aws object"]
    problems = []
    if not isinstance(meta.get("Timestamp"), int) or meta["Timestamp"] < 10**12:
        problems.append(f"Timestamp {meta.get('Timestamp')!r} is not epoch milliseconds")
    directives = meta.get("CloudWatchMetrics")
    if not isinstance(directives, list) or not directives:
        return [*problems, "no CloudWatchMetrics directive"]
    for directive in directives:
        if not 1 <= len(directive.get("Namespace", "")) <= 255:
            problems.append("namespace missing or too long")
        for dimension_set in directive.get("Dimensions", []):
            if len(dimension_set) > 30:
                problems.append("more than 30 dimensions")
            problems += [f"dimension {d} is not a top-level string" for d in dimension_set
                         if not isinstance(doc.get(d), str)]  # fmt: skip
        metrics = directive.get("Metrics", [])
        if not 1 <= len(metrics) <= 100:
            problems.append(f"{len(metrics)} metrics (1 to 100)")
        for metric in metrics:
            value = doc.get(metric["Name"])
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                problems.append(f"metric {metric['Name']} is not a top-level number ({value!r})")
            if metric.get("Unit", "None") not in UNITS:
                problems.append(f"metric {metric['Name']}: unit {metric['Unit']!r}")
    return problems


# ---- the catalogue and the lines ------------------------------------------------------------


@pytest.mark.parametrize("component", [emf.Relay, emf.Probe, emf.Sequencer], ids=lambda c: c.__name__)
def test_every_metric_in_the_catalogue_is_publishable(component: Any) -> None:
    names = [m.name for m in component.ALL]
    assert len(set(names)) == len(names)
    doc = emf.document("p-x", {metric: 1 for metric in component.ALL})
    assert emf_problems(doc) == []


def test_the_checker_catches_what_cloudwatch_would_refuse() -> None:
    bad_unit = emf.Metric("Lag", "Micros", "")
    doc = emf.document("p-x", {bad_unit: 1.0}, timestamp_ms=12)
    assert emf_problems(doc) == ["Timestamp 12 is not epoch milliseconds", "metric Lag: unit 'Micros'"]
    doc = emf.document("p-x", {emf.Probe.RECEIVED: 3})
    del doc["Service"]
    doc["Received"] = "3"
    assert emf_problems(doc) == [
        "dimension Service is not a top-level string",
        "metric Received is not a top-level number ('3')",
    ]


def test_a_line_is_one_json_document_under_the_namespace_and_service() -> None:
    text = emf.line("venue-md-relay", {emf.Relay.PEERS: 1, emf.Relay.GAPS: 0}, timestamp_ms=1_700_000_000_000)
    assert "\n" not in text
    doc = json.loads(text)
    assert doc["Service"] == "venue-md-relay" and (doc["Peers"], doc["Gaps"]) == (1, 0)
    [directive] = doc["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == emf.NAMESPACE and directive["Dimensions"] == [[emf.DIMENSION]]
    assert [m["Name"] for m in directive["Metrics"]] == ["Peers", "Gaps"]


def test_deltas_count_per_interval_and_start_over_when_a_total_goes_down() -> None:
    deltas = emf.Deltas()
    m = emf.Relay.GAPS
    assert deltas.since_last({m: 5}) == {m: 5}
    assert deltas.since_last({m: 5}) == {m: 0}
    assert deltas.since_last({m: 9}) == {m: 4}
    assert deltas.since_last({m: 2}) == {m: 2}  # a restarted process counts from zero


def test_the_relay_sampler_publishes_counts_per_interval_and_the_links_up() -> None:
    stats = RelayStats(role="egress")
    sample = emf_sampler(stats)
    group = stats.group("239.10.1.1:30001")
    group.datagrams_in, group.datagrams_out, group.gaps = 100, 98, 2
    stats.peers = 1
    stats.drops["oversize"] = 1
    first = sample()
    r = emf.Relay
    assert (first[r.PEERS], first[r.DATAGRAMS_OUT], first[r.GAPS], first[r.DROPS]) == (1, 98, 2, 1)
    assert r.UNRECOVERABLE not in first  # an ingress figure
    stats.group("239.10.1.2:30002").datagrams_out = 5
    stats.peers = 0
    stats.disconnects["heartbeat_timeout"] += 1
    second = sample()
    assert (second[r.PEERS], second[r.DATAGRAMS_OUT], second[r.GAPS], second[r.DISCONNECTS]) == (0, 5, 0, 1)
    assert emf.Relay.UNRECOVERABLE in emf_sampler(RelayStats(role="ingress"))()


def test_the_sequencer_sampler_counts_messages_and_retransmissions_per_interval() -> None:
    counts = SimpleNamespace(messages=10, packets=4, send_errors=0, too_big=1)
    sequencer: Any = SimpleNamespace(
        counts=counts, retransmitter=SimpleNamespace(counts=SimpleNamespace(messages=3))
    )
    sample = sequencer_sampler(sequencer)
    s = emf.Sequencer
    assert sample() == {s.MESSAGES: 10, s.PACKETS: 4, s.SEND_ERRORS: 0, s.TOO_BIG: 1, s.RETRANSMITTED: 3}
    counts.messages, counts.send_errors = 25, 2
    assert sample() == {s.MESSAGES: 15, s.PACKETS: 0, s.SEND_ERRORS: 2, s.TOO_BIG: 0, s.RETRANSMITTED: 0}


def test_the_publisher_prints_a_line_per_interval_and_one_more_on_close() -> None:
    out = io.StringIO()
    calls = [0]

    def sample() -> dict[emf.Metric, float]:
        calls[0] += 1
        return {emf.Sequencer.MESSAGES: calls[0]}

    publisher = emf.Publisher("p-stream-s", sample, out, every=0.05).start()
    deadline = time.monotonic() + 5
    while out.getvalue().count("\n") < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    publisher.close()
    publisher.close()  # idempotent: no second final line
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) >= 3 and [line["Messages"] for line in lines] == list(range(1, len(lines) + 1))
    assert all(emf_problems(line) == [] for line in lines)


@needs_loopback_multicast
def test_probe_recv_prints_a_metric_line_per_report() -> None:
    group = str(random_group())
    console = Console(out=io.StringIO(), err=io.StringIO())
    outcome: list[int] = []
    recv = ["probe", "recv", "--group", group, "--interface", LOOPBACK, "--count", "0", "--json"]
    receiver = threading.Thread(
        target=lambda: outcome.append(
            main([*recv, "--report-every", "0.5", "--timeout", "3", "--emf", "venue-md-probe-probe"], console)
        )
    )
    receiver.start()
    time.sleep(0.3)
    send = ["probe", "send", "--group", group, "--interface", LOOPBACK, "--ttl", "1", "--json"]
    assert (
        main([*send, "--count", "2000", "--rate", "2000"], Console(out=io.StringIO(), err=io.StringIO())) == 0
    )
    receiver.join(15)
    docs = [json.loads(line) for line in console.out.getvalue().splitlines()]
    reports = [d for d in docs if "_aws" not in d]
    metrics = [d for d in docs if "_aws" in d]
    assert reports and len(metrics) == len(reports)
    assert all(emf_problems(m) == [] and m["Service"] == "venue-md-probe-probe" for m in metrics)
    assert [m["Received"] for m in metrics] == [r["received"] for r in reports]
    assert [m["LossPercent"] for m in metrics] == [round(r["loss"] * 100, 6) for r in reports]
    assert sum(m["Received"] for m in metrics) > 0


def test_probe_metrics_need_an_open_ended_stream() -> None:
    console = Console(out=io.StringIO(), err=io.StringIO())
    status = main(
        ["probe", "recv", "--group", "239.1.1.1:5000", "--interface", LOOPBACK, "--emf", "x"], console
    )
    assert status == ExitStatus.BAD_INPUT
    assert console.err.getvalue().splitlines() == [
        "mcastkit: error: --emf x: metrics come from an open-ended probe stream; add --count 0"
    ]


# ---- the alarms, the topic and the dashboard in the compute stack ---------------------------


@pytest.fixture(scope="module")
def compute(example_app: Any) -> dict[str, dict[str, Any]]:
    return {
        region: Template.from_stack(example_app.stacks[region].compute).to_json()
        for region in (LONDON, TOKYO)
    }


def _of_type(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: r["Properties"] for k, r in template["Resources"].items() if r["Type"] == type_}


def _ref_id(template: dict[str, Any], properties: dict[str, Any]) -> str:
    [logical_id] = [k for k, r in template["Resources"].items() if r.get("Properties") is properties]
    return logical_id


def test_alarms_are_made_once_the_services_are_up(compute: dict[str, Any]) -> None:
    """No ALARM on a first deploy that succeeds: alarms wait for the services to be stable."""
    resources = compute[LONDON]["Resources"]
    services = {k for k, r in resources.items() if r["Type"] == "AWS::ECS::Service"}
    assert len(services) == 4
    for alarm in (r for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"):
        # An alarm on a service's tasks names it (GetAtt): that orders it already.
        named = {
            d["Value"]["Fn::GetAtt"][0]
            for d in alarm["Properties"]["Dimensions"]
            if "Fn::GetAtt" in d["Value"]
        }
        assert services == set(alarm.get("DependsOn", [])) | named


def test_subscriptions_are_keyed_by_their_endpoint(example_app: Any, example_config: Config) -> None:
    """Removing one address replaces no other subscription (each would have to confirm again)."""
    import aws_cdk as cdk

    from mcastkit.config.models import Monitoring
    from mcastkit.constructs.monitoring import AlarmTopic

    def ids(emails: list[str]) -> dict[str, str]:
        stack = cdk.Stack(cdk.App(), "T", env=cdk.Environment(account="111111111111", region=LONDON))
        AlarmTopic(stack, "A", monitoring=Monitoring(email=emails), alarm_prefix="p", description="d")
        subs = _of_type(Template.from_stack(stack).to_json(), "AWS::SNS::Subscription")
        return {props["Endpoint"]: logical_id for logical_id, props in subs.items()}

    before = ids(["a@example.com", "b@example.com", "c@example.com"])
    after = ids(["a@example.com", "c@example.com"])
    assert after == {k: v for k, v in before.items() if k != "b@example.com"}


def _emf_services(template: dict[str, Any]) -> set[str]:
    """The ``--emf`` values of the containers' commands: what the tasks will publish under."""
    services = set()
    for task in _of_type(template, "AWS::ECS::TaskDefinition").values():
        for container in task["ContainerDefinitions"]:
            command = container.get("Command", [])
            if "--emf" in command:
                services.add(command[command.index("--emf") + 1])
    return services


def test_every_alarm_on_mcastkit_metrics_watches_what_a_task_publishes(compute: dict[str, Any]) -> None:
    template = compute[LONDON]
    alarms = _of_type(template, "AWS::CloudWatch::Alarm")
    published = _emf_services(template)
    assert published == {"venue-md-relay", "venue-md-probe-probe", "venue-md-stream-md-seq"}
    catalogue = {m.name for c in (emf.Relay, emf.Probe, emf.Sequencer) for m in c.ALL}
    own = [a for a in alarms.values() if a["Namespace"] == emf.NAMESPACE]
    assert {a["Dimensions"][0]["Value"] for a in own} == published
    assert all(a["MetricName"] in catalogue and a["Dimensions"][0]["Name"] == emf.DIMENSION for a in own)


def test_london_has_its_alarms_with_the_config_thresholds(
    compute: dict[str, Any], example_config: Config
) -> None:
    alarms = {a["AlarmName"]: a for a in _of_type(compute[LONDON], "AWS::CloudWatch::Alarm").values()}
    prefix = "venue-md-eu-west-2-"
    assert sorted(name.removeprefix(prefix) for name in alarms) == sorted([
        "RelayLinkDown", "RelayGaps", "ProbeLoss", "ProbeSilent", "ProbeSenderRestarts",
        "StreamMdSeqSendErrors", "StreamMdSeqSilent", "HostsMissing", "HostsNotRegistering",
        "RelayTasksBelowDesired", "ProbeReceiversTasksBelowDesired", "ProbeSenderTasksBelowDesired",
        "SequencerMdSeqTasksBelowDesired",
    ])  # fmt: skip
    thresholds = example_config.monitoring.alarms
    down = alarms[prefix + "RelayLinkDown"]
    assert (down["MetricName"], down["Statistic"], down["ComparisonOperator"], down["Threshold"]) == (
        "Peers", "Maximum", "LessThanThreshold", 1,
    )  # fmt: skip
    assert down["EvaluationPeriods"] == down["DatapointsToAlarm"] == thresholds.relay_down_minutes
    # No report at all is the failure for "is it up", and nothing wrong for "how much went wrong".
    assert down["TreatMissingData"] == alarms[prefix + "ProbeSilent"]["TreatMissingData"] == "breaching"
    assert alarms[prefix + "RelayGaps"]["TreatMissingData"] == "notBreaching"
    assert alarms[prefix + "ProbeLoss"]["Threshold"] == thresholds.probe_loss_percent
    # Hosts: the group's own count (Container Insights counts only hosts that run a task), and
    # tasks waiting for hosts that never register.
    hosts = alarms[prefix + "HostsMissing"]
    assert (hosts["Namespace"], hosts["MetricName"], hosts["Threshold"]) == (
        "AWS/AutoScaling", "GroupInServiceInstances", example_config.regions[LONDON].capacity.min,
    )  # fmt: skip
    [group] = _of_type(compute[LONDON], "AWS::AutoScaling::AutoScalingGroup").values()
    assert hosts["Dimensions"] == [
        {"Name": "AutoScalingGroupName", "Value": {"Ref": _ref_id(compute[LONDON], group)}}
    ]
    assert {"Granularity": "1Minute", "Metrics": ["GroupInServiceInstances"]} in group["MetricsCollection"]
    waiting = alarms[prefix + "HostsNotRegistering"]
    assert (waiting["Namespace"], waiting["MetricName"]) == (
        "AWS/ECS/ManagedScaling",
        "CapacityProviderReservation",
    )
    assert (waiting["ComparisonOperator"], waiting["Threshold"]) == ("GreaterThanThreshold", 100)
    # A stuck sequencer still heartbeats if alive: no packets at all is the failure.
    silent = alarms[prefix + "StreamMdSeqSilent"]
    assert (silent["MetricName"], silent["Statistic"], silent["TreatMissingData"]) == (
        "Packets",
        "Sum",
        "breaching",
    )
    # Every receiver sees every restart of the sender.
    restarts = alarms[prefix + "ProbeSenderRestarts"]
    assert restarts["Threshold"] == thresholds.probe_sender_restarts * 2 and restarts["Period"] == 900
    receivers = alarms[prefix + "ProbeReceiversTasksBelowDesired"]
    assert [d["Name"] for d in receivers["Dimensions"]] == ["ClusterName", "ServiceName"]
    assert receivers["Threshold"] == example_config.regions[LONDON].probe.receivers  # type: ignore[union-attr]
    for alarm in alarms.values():
        assert alarm["Period"] * alarm["EvaluationPeriods"] <= 86_400  # CloudWatch's limit
        assert alarm["AlarmActions"] == alarm["OKActions"] and len(alarm["AlarmActions"]) == 1


def test_a_region_without_probe_or_streams_has_no_alarms_for_them(compute: dict[str, Any]) -> None:
    names = {a["AlarmName"] for a in _of_type(compute[TOKYO], "AWS::CloudWatch::Alarm").values()}
    assert names == {f"venue-md-ap-northeast-1-{k}" for k in
                     ("RelayLinkDown", "RelayGaps", "RelayTasksBelowDesired", "HostsMissing",
                      "HostsNotRegistering")}  # fmt: skip


def test_the_cluster_publishes_container_insights(compute: dict[str, Any]) -> None:
    [cluster] = _of_type(compute[LONDON], "AWS::ECS::Cluster").values()
    assert {"Name": "containerInsights", "Value": "enabled"} in cluster["ClusterSettings"]


def test_the_topic_is_encrypted_with_a_key_cloudwatch_may_use_for_these_alarms_only(
    compute: dict[str, Any],
) -> None:
    template = compute[LONDON]
    [(topic_id, topic)] = [(k, r) for k, r in template["Resources"].items() if r["Type"] == "AWS::SNS::Topic"]
    key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = template["Resources"][key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    [for_cloudwatch] = [
        s
        for s in key["KeyPolicy"]["Statement"]
        if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert set(for_cloudwatch["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert "aws:SourceAccount" in for_cloudwatch["Condition"]["StringEquals"]
    assert ":alarm:venue-md-eu-west-2-*" in json.dumps(for_cloudwatch["Condition"]["ArnLike"])
    [policy] = _of_type(template, "AWS::SNS::TopicPolicy").values()
    statements = policy["PolicyDocument"]["Statement"]
    # The topic policy replaces SNS's default one: CloudWatch may publish only because it says so.
    publish = [s for s in statements if s["Effect"] == "Allow" and s["Action"] == "sns:Publish"]
    assert [s["Principal"] for s in publish] == [{"Service": "cloudwatch.amazonaws.com"}]
    assert publish[0]["Resource"] == {"Ref": topic_id}
    deny = [s for s in statements if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    for alarm in _of_type(template, "AWS::CloudWatch::Alarm").values():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]


def test_the_config_subscribes_who_hears_of_an_alarm(compute: dict[str, Any], example_config: Config) -> None:
    for template in compute.values():
        subscriptions = _of_type(template, "AWS::SNS::Subscription").values()
        assert sorted((s["Protocol"], s["Endpoint"]) for s in subscriptions) == [
            ("email", address) for address in example_config.monitoring.email
        ]


def _resolved_body(template: dict[str, Any]) -> dict[str, Any]:
    """The dashboard document with each CloudFormation reference written as ``<ref>``."""
    [dashboard] = _of_type(template, "AWS::CloudWatch::Dashboard").values()
    body = dashboard["DashboardBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    return json.loads("".join(part if isinstance(part, str) else "<ref>" for part in parts))  # type: ignore[no-any-return]


def test_the_dashboard_shows_the_path_and_every_alarm(compute: dict[str, Any]) -> None:
    template = compute[LONDON]
    [dashboard] = _of_type(template, "AWS::CloudWatch::Dashboard").values()
    assert dashboard["DashboardName"] == "venue-md-eu-west-2"
    body = _resolved_body(template)
    widgets = body["widgets"]
    assert all(w["x"] + w["width"] <= GRID_WIDTH for w in widgets)
    titles = [w["properties"].get("title", "") for w in widgets]
    for expected in ("Relay: links up", "TGW: bytes (all traffic)", "Probe: loss %", "Streams: messages",
                     "ECS: tasks running", "Alarms"):  # fmt: skip
        assert expected in titles
    [alarm_widget] = [w for w in widgets if w["type"] == "alarm"]
    assert len(alarm_widget["properties"]["alarms"]) == len(_of_type(template, "AWS::CloudWatch::Alarm"))
    own = {
        (m[1], m[3])
        for w in widgets
        if w["type"] == "metric"
        for m in w["properties"]["metrics"]
        if m[0] == emf.NAMESPACE
    }
    assert {service for _, service in own} == _emf_services(template)
    # Rows do not overlap: each starts where the one above ends.
    boxes = [(w["x"], w["y"], w["x"] + w["width"], w["y"] + w["height"]) for w in widgets]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)


def test_the_readme_picture_is_the_dashboards_layout(example_config: Config) -> None:
    drawn = layout(example_config, LONDON)
    assert drawn.count("Alarms: 13 alarms") == 1 and "Relay: links up" in drawn
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- dashboard -->\n```text\n(.*?)\n```", readme, re.DOTALL)
    assert match, "README: the dashboard picture block is missing"
    assert match[1] == drawn, (
        "README's dashboard picture is stale: paste mcastkit.monitoring.dashboard.layout()"
    )
