"""CustomerStack: parameters, attachment, per-subnet associations, receiver rules, cdk-nag, cfn-lint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mcastkit.config import Capacity, Config

REGION = "eu-west-2"


def _build(
    config: Config, customer: str, outdir: Path, context: dict[str, Any], **kwargs: Any
) -> SimpleNamespace:
    import aws_cdk as cdk
    from aws_cdk.assertions import Template
    from cdk_nag import AwsSolutionsChecks

    from mcastkit.onboard.kit import entitled_streams
    from mcastkit.stacks.customer import CustomerStack

    app = cdk.App(context=context, outdir=str(outdir))
    region = config.regions[REGION]
    entitled = config.customer(customer)
    stack = CustomerStack(
        app,
        f"venue-md-{customer}-{REGION}-receiver",
        domains=[region.domain(d) for d in entitled.domains_in(REGION)],
        streams=entitled_streams(config, entitled, REGION),
        env=cdk.Environment(account=entitled.principal, region=REGION),
        **kwargs,
    )
    report = AwsSolutionsChecks().validate_scope(app)
    app.synth()
    return SimpleNamespace(
        app=app,
        stack=stack,
        template=Template.from_stack(stack),
        report=report,
        path=outdir / f"{stack.stack_name}.template.json",
        manifest=json.loads((outdir / "manifest.json").read_text()),
    )


@pytest.fixture(scope="module")
def alpha(
    example_config: Config, cdk_context: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> SimpleNamespace:
    """alpha-trading in eu-west-2: two domains, with the optional IGMPv2 cluster."""
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("AWS_")}
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    try:  # no credentials at all: the synth must not need any
        return _build(
            example_config, "alpha-trading", tmp_path_factory.mktemp("alpha"), cdk_context, cluster=Capacity()
        )
    finally:
        os.environ.pop("AWS_EC2_METADATA_DISABLED")
        os.environ.update(saved)


def test_parameters_import_the_customer_vpc_and_the_shared_ids(alpha: SimpleNamespace) -> None:
    params = alpha.template.to_json()["Parameters"]
    assert params["VpcId"]["Type"] == "AWS::EC2::VPC::Id"
    assert params["TransitGatewayId"]["AllowedPattern"] == "^tgw-[0-9a-f]{8,17}$"
    assert params["MarketDataDomainId"]["AllowedPattern"].startswith("^tgw-mcast-domain-")
    # Two domains: one subnet each, each in its own AZ (one attachment subnet per AZ).
    assert params["MarketDataSubnet1"]["Type"] == "AWS::EC2::Subnet::Id"
    assert params["ReferenceDataSubnet1"]["Type"] == "AWS::EC2::Subnet::Id"
    assert "MarketDataSubnet2" not in params
    assert "BootstrapVersion" not in params  # deployable with plain CloudFormation, no CDK bootstrap


def test_attachment_and_one_association_per_subnet(alpha: SimpleNamespace) -> None:
    template = alpha.template
    template.resource_count_is("AWS::EC2::TransitGatewayAttachment", 1)
    template.has_resource_properties(
        "AWS::EC2::TransitGatewayAttachment",
        {
            "TransitGatewayId": {"Ref": "TransitGatewayId"},
            "VpcId": {"Ref": "VpcId"},
            "SubnetIds": [{"Ref": "MarketDataSubnet1"}, {"Ref": "ReferenceDataSubnet1"}],
        },
    )
    associations = template.find_resources("AWS::EC2::TransitGatewayMulticastDomainAssociation")
    pairs = sorted(
        (a["Properties"]["TransitGatewayMulticastDomainId"]["Ref"], a["Properties"]["SubnetId"]["Ref"])
        for a in associations.values()
    )
    assert pairs == [
        ("MarketDataDomainId", "MarketDataSubnet1"),
        ("ReferenceDataDomainId", "ReferenceDataSubnet1"),
    ]
    (attachment_id,) = template.find_resources("AWS::EC2::TransitGatewayAttachment")
    for association in associations.values():
        assert association["Properties"]["TransitGatewayAttachmentId"] == {
            "Fn::GetAtt": [attachment_id, "Id"]
        }


def test_logical_ids_of_the_attachment_and_associations_stay_stable(alpha: SimpleNamespace) -> None:
    resources = alpha.template.to_json()["Resources"]
    assert resources["TransitGatewayAttachment"]["Type"] == "AWS::EC2::TransitGatewayAttachment"
    for logical_id in ("MarketDataAssociation1", "ReferenceDataAssociation1"):
        assert resources[logical_id]["Type"] == "AWS::EC2::TransitGatewayMulticastDomainAssociation"


def test_receiver_rules_come_from_the_domains(alpha: SimpleNamespace) -> None:
    template = alpha.template
    receivers = alpha.stack.get_logical_id(alpha.stack.member_rules.security_group.node.default_child)
    sg = template.find_resources("AWS::EC2::SecurityGroup")[receivers]
    ingress = sg["Properties"]["SecurityGroupIngress"]
    assert {"CidrIp": "0.0.0.0/32", "IpProtocol": "2"} in [
        {k: r[k] for k in ("CidrIp", "IpProtocol")} for r in ingress
    ]
    udp_sources = {r["CidrIp"] for r in ingress if r["IpProtocol"] == "udp"}
    assert udp_sources == {"10.20.0.0/24", "10.20.1.0/24", "10.20.10.0/24"}
    egress = {(r["CidrIp"], r["IpProtocol"]) for r in sg["Properties"]["SecurityGroupEgress"]}
    assert ("224.0.0.2/32", "2") in egress and ("239.10.2.1/32", "2") in egress
    template.resource_count_is("AWS::EC2::SubnetNetworkAclAssociation", 2)
    template.has_resource_properties(
        "AWS::EC2::NetworkAclEntry", {"Protocol": 2, "CidrBlock": "0.0.0.0/32", "Egress": False}
    )
    # Receivers keep talking to the rest of the customer's VPC through their own ACL.
    (acl_id,) = template.find_resources("AWS::EC2::NetworkAcl")
    for egress in (False, True):
        template.has_resource_properties(
            "AWS::EC2::NetworkAclEntry",
            {
                "NetworkAclId": {"Ref": acl_id},
                "CidrBlock": {"Ref": "VpcCidr"},
                "Protocol": -1,
                "RuleAction": "allow",
                "Egress": egress,
            },
        )


def test_optional_cluster_uses_the_receiver_subnets(alpha: SimpleNamespace) -> None:
    template = alpha.template
    template.resource_count_is("AWS::ECS::Cluster", 1)
    template.has_resource_properties(
        "AWS::AutoScaling::AutoScalingGroup",
        {"VPCZoneIdentifier": [{"Ref": "MarketDataSubnet1"}, {"Ref": "ReferenceDataSubnet1"}]},
    )


def test_an_interface_endpoint_to_each_entitled_streams_replay(alpha: SimpleNamespace) -> None:
    template = alpha.template.to_json()
    resources = template["Resources"]
    endpoint = resources["MdSeqReplayEndpoint"]  # a stable logical id: ServiceName is create-only
    assert endpoint["Type"] == "AWS::EC2::VPCEndpoint"
    props = endpoint["Properties"]
    assert props["VpcEndpointType"] == "Interface"
    assert props["ServiceName"] == {"Ref": "MdSeqEndpointServiceName"}
    assert props["SubnetIds"] == {"Ref": "MdSeqEndpointSubnets"}
    assert props["VpcId"] == {"Ref": "VpcId"}
    assert props["PrivateDnsEnabled"] is False
    params = template["Parameters"]
    assert params["MdSeqEndpointSubnets"]["Type"] == "List<AWS::EC2::Subnet::Id>"
    assert params["MdSeqEndpointServiceName"]["AllowedPattern"].startswith("^com\\.amazonaws\\.vpce\\.")
    # The endpoint admits the replay port from the receivers only; the receivers may send it there.
    [endpoint_group] = props["SecurityGroupIds"]
    group_id = endpoint_group["Fn::GetAtt"][0]
    receivers = alpha.stack.resolve(alpha.stack.member_rules.security_group.security_group_id)
    ingress = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::EC2::SecurityGroupIngress" and r["Properties"]["GroupId"] == endpoint_group
    ]
    assert [(i["IpProtocol"], i["FromPort"], i["ToPort"], i["SourceSecurityGroupId"]) for i in ingress] == [
        ("tcp", 17001, 17001, receivers)
    ]
    assert "SecurityGroupIngress" not in resources[group_id]["Properties"]
    egress = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::EC2::SecurityGroupEgress" and r["Properties"]["GroupId"] == receivers
    ]
    assert [(e["FromPort"], e["DestinationSecurityGroupId"]) for e in egress] == [(17001, endpoint_group)]
    # One endpoint: alpha's other domain (reference-data) has no stream.
    assert sum(1 for r in resources.values() if r["Type"] == "AWS::EC2::VPCEndpoint") == 1
    # The output is what `mcastkit stream recv --replay` takes: the endpoint's DNS name and the port.
    value = template["Outputs"]["MdSeqReplay"]["Value"]["Fn::Join"]
    assert value[0] == ":" and value[1][1] == "17001"
    assert {"Fn::GetAtt": ["MdSeqReplayEndpoint", "DnsEntries"]} in [
        value[1][0]["Fn::Select"][1]["Fn::Split"][1]["Fn::Select"][1]
    ]


def test_no_security_group_keeps_the_default_allow_all_egress(alpha: SimpleNamespace) -> None:
    for logical_id, resource in alpha.template.to_json()["Resources"].items():
        if resource["Type"] == "AWS::EC2::SecurityGroup":
            assert resource["Properties"].get("SecurityGroupEgress"), logical_id


def test_refuses_a_stream_of_a_domain_not_entitled(example_config: Config) -> None:
    import aws_cdk as cdk

    from mcastkit.stacks.customer import CustomerStack

    region = example_config.regions[REGION]
    with pytest.raises(ValueError, match=r"streams \['md-seq'\] are not of an entitled domain"):
        CustomerStack(cdk.App(), "Other", domains=[region.domain("reference-data")], streams=region.streams)


def test_synth_makes_no_lookups(alpha: SimpleNamespace) -> None:
    assert not alpha.manifest.get("missing")


def test_cdk_nag_has_no_unacknowledged_findings(alpha: SimpleNamespace) -> None:
    findings = [
        f"{v.rule_name}: {r.construct_path}" for v in alpha.report.violations for r in v.violating_resources
    ]
    assert findings == []


def test_cfn_lint_is_clean(alpha: SimpleNamespace) -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run(
        [str(cfn_lint), "--non-zero-exit-code", "error", "--", str(alpha.path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_refuses_no_domains() -> None:
    import aws_cdk as cdk

    from mcastkit.stacks.customer import CustomerStack

    with pytest.raises(ValueError, match="at least one entitled domain"):
        CustomerStack(cdk.App(), "Empty", domains=[])
