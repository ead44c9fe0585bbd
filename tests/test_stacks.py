"""The per-region stacks of the example config, and how the config drives them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from mcastkit.config import Config, parse_config
from mcastkit.config.rules import acl_plan, member_acl_room, relay_links, stream_acl_plan
from mcastkit.stacks import RegionStacks, add_region_stacks

REGIONS = ["eu-west-2", "ap-northeast-1"]


@pytest.fixture(scope="module")
def stacks(example_app: Any) -> dict[str, RegionStacks]:
    by_region = example_app.stacks
    assert isinstance(by_region, dict)
    return by_region


@pytest.fixture(scope="module")
def templates(stacks: dict[str, RegionStacks]) -> dict[str, Template]:
    return {
        stack.stack_name: Template.from_stack(stack)
        for region in stacks.values()
        for stack in (region.network, region.sharing, region.compute)
    }


def test_three_stacks_per_region_with_explicit_env(
    stacks: dict[str, RegionStacks], example_config: Config
) -> None:
    assert list(stacks) == REGIONS
    for region, group in stacks.items():
        for kind, stack in (
            ("network", group.network),
            ("sharing", group.sharing),
            ("compute", group.compute),
        ):
            assert stack.stack_name == example_config.stack_name(region, kind) == f"venue-md-{region}-{kind}"
            assert stack.account == "111111111111"
            assert stack.region == region
        assert group.network.termination_protection is True
        assert not group.sharing.termination_protection and not group.compute.termination_protection


def test_synth_makes_no_lookups(example_app: Any) -> None:
    manifest = json.loads((Path(example_app.assembly.directory) / "manifest.json").read_text())
    assert "missing" not in manifest  # context a lookup would have to fill
    stacks = [a for a in manifest["artifacts"].values() if a["type"] == "aws:cloudformation:stack"]
    assert len(stacks) == 7  # network, sharing, compute per region, and London's eks
    assert {a["environment"] for a in stacks} == {f"aws://111111111111/{r}" for r in REGIONS}


def test_stateful_logical_ids_are_pinned(templates: dict[str, Template]) -> None:
    """Renaming these replaces the VPC, the TGW or a domain and cuts every customer off."""
    for region in REGIONS:
        resources = templates[f"venue-md-{region}-network"].to_json()["Resources"]
        pinned = {
            "Vpc": "AWS::EC2::VPC",
            "TransitGateway": "AWS::EC2::TransitGateway",
            "TransitGatewayAttachment": "AWS::EC2::TransitGatewayAttachment",
            "MulticastDomainMarketData": "AWS::EC2::TransitGatewayMulticastDomain",
            "MulticastDomainReferenceData": "AWS::EC2::TransitGatewayMulticastDomain",
        }
        assert {k: resources[k]["Type"] for k in pinned if k in resources} == pinned


def test_network_outputs_have_stable_export_names(templates: dict[str, Template]) -> None:
    template = templates["venue-md-eu-west-2-network"]
    for output, value in (
        ("TransitGatewayId", {"Ref": "TransitGateway"}),
        ("TransitGatewayArn", {"Fn::GetAtt": ["TransitGateway", "TransitGatewayArn"]}),
        (
            "MarketDataDomainId",
            {"Fn::GetAtt": ["MulticastDomainMarketData", "TransitGatewayMulticastDomainId"]},
        ),
        (
            "ReferenceDataDomainArn",
            {"Fn::GetAtt": ["MulticastDomainReferenceData", "TransitGatewayMulticastDomainArn"]},
        ),
    ):
        template.has_output(
            output, {"Value": value, "Export": {"Name": f"venue-md-eu-west-2-network-{output}"}}
        )


def test_domains_and_associations_follow_the_config(
    templates: dict[str, Template], example_config: Config
) -> None:
    for region in REGIONS:
        template = templates[f"venue-md-{region}-network"]
        settings = example_config.regions[region]
        template.resource_count_is("AWS::EC2::TransitGatewayMulticastDomain", len(settings.domains))
        template.resource_count_is(
            "AWS::EC2::TransitGatewayMulticastDomainAssociation", len(settings.subnets)
        )
        template.resource_count_is("AWS::EC2::TransitGateway", 1)
        template.has_resource_properties(
            "AWS::EC2::TransitGateway",
            {"AmazonSideAsn": settings.transit_gateway_asn, "MulticastSupport": "enable"},
        )
        for domain in ("MarketData", "ReferenceData"):
            options = template.to_json()["Resources"][f"MulticastDomain{domain}"]["Properties"]["Options"]
            assert options == {
                "Igmpv2Support": "enable",
                "StaticSourcesSupport": "disable",
                "AutoAcceptSharedAssociations": "disable",
            }


def test_attachment_holds_every_multicast_subnet(templates: dict[str, Template]) -> None:
    template = templates["venue-md-eu-west-2-network"]
    resources = template.to_json()["Resources"]
    cidr_of = {
        k: r["Properties"]["CidrBlock"] for k, r in resources.items() if r["Type"] == "AWS::EC2::Subnet"
    }
    subnets = resources["TransitGatewayAttachment"]["Properties"]["SubnetIds"]
    assert [cidr_of[s["Ref"]] for s in subnets] == ["10.20.0.0/24", "10.20.1.0/24", "10.20.10.0/24"]


def test_member_rules_cover_the_multicast_subnets(templates: dict[str, Template]) -> None:
    template = templates["venue-md-ap-northeast-1-network"]
    template.resource_count_is("AWS::EC2::SubnetNetworkAclAssociation", 3)
    template.has_resource_properties(
        "AWS::EC2::NetworkAclEntry", {"Egress": False, "Protocol": 2, "CidrBlock": "0.0.0.0/32"}
    )
    template.has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {
            "SecurityGroupIngress": Match.array_with(
                [Match.object_like({"CidrIp": "10.30.10.0/24", "IpProtocol": "udp", "FromPort": 31001})]
            )
        },
    )


def _shares(template: Template) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["Name"]: r["Properties"]
        for r in template.find_resources("AWS::RAM::ResourceShare").values()
    }


def test_shares_hold_exactly_the_entitled_principals(
    templates: dict[str, Template], example_config: Config
) -> None:
    for region in REGIONS:
        shares = _shares(templates[f"venue-md-{region}-sharing"])
        for domain in example_config.regions[region].domains:
            share = shares[f"venue-md-{region}-{domain.name}"]
            assert share["Principals"] == [
                c.principal for c in example_config.customers_of(region, domain.name)
            ]
            assert share["AllowExternalPrincipals"] is example_config.allow_external_principals(
                region, domain.name
            )
            assert len(share["ResourceArns"]) == 2
    london = _shares(templates["venue-md-eu-west-2-sharing"])
    assert london["venue-md-eu-west-2-market-data"]["Principals"] == ["222222222222", "333333333333"]
    assert london["venue-md-eu-west-2-reference-data"]["Principals"] == ["222222222222"]
    tokyo = _shares(templates["venue-md-ap-northeast-1-sharing"])
    ou = "arn:aws:organizations::111111111111:ou/o-exampleorg1/ou-ab12-cdef3456"
    # Only an OU of the provider's own organization: no external principals allowed.
    assert tokyo["venue-md-ap-northeast-1-reference-data"]["Principals"] == [ou]
    assert tokyo["venue-md-ap-northeast-1-reference-data"]["AllowExternalPrincipals"] is False
    assert tokyo["venue-md-ap-northeast-1-market-data"]["AllowExternalPrincipals"] is True


def test_compute_uses_the_region_capacity(templates: dict[str, Template]) -> None:
    template = templates["venue-md-eu-west-2-compute"]
    template.has_resource_properties("AWS::AutoScaling::AutoScalingGroup", {"MinSize": "3", "MaxSize": "4"})
    template.has_resource_properties(
        "AWS::EC2::LaunchTemplate", {"LaunchTemplateData": Match.object_like({"InstanceType": "c6in.large"})}
    )
    tokyo = templates["venue-md-ap-northeast-1-compute"]
    tokyo.has_resource_properties("AWS::AutoScaling::AutoScalingGroup", {"MinSize": "1", "MaxSize": "2"})


@pytest.fixture(scope="module")
def revised(example_config: Config, cdk_context: dict[str, Any]) -> dict[str, Template]:
    """London only, twice: once without beta-capital, once with no customers at all."""
    data = example_config.model_dump(mode="json")
    data["regions"] = {"eu-west-2": data["regions"]["eu-west-2"]}
    data["customers"] = [
        {**c, "entitlements": [e for e in c["entitlements"] if e["region"] == "eu-west-2"]}
        for c in data["customers"]
        if c["name"] != "beta-capital"
    ]
    without_beta = parse_config(data)
    nobody = parse_config({**data, "project": "nobody", "customers": []})
    app = cdk.App(context=cdk_context)
    groups = {
        config.project: add_region_stacks(app, config, "eu-west-2") for config in (without_beta, nobody)
    }
    return {project: Template.from_stack(group.sharing) for project, group in groups.items()}


def test_removing_a_customer_removes_it_from_the_share(revised: dict[str, Template]) -> None:
    shares = _shares(revised["venue-md"])
    assert shares["venue-md-eu-west-2-market-data"]["Principals"] == ["222222222222"]
    assert all("333333333333" not in s["Principals"] for s in shares.values())


def test_a_domain_nobody_receives_gets_no_share(revised: dict[str, Template]) -> None:
    template = revised["nobody"]
    template.resource_count_is("AWS::RAM::ResourceShare", 0)
    # The stack stays deployable (an empty template is not), so the old shares get deleted.
    template.resource_count_is("AWS::CloudFormation::WaitConditionHandle", 1)


def test_each_share_arn_is_an_output_for_the_hand_off_kit(templates: dict[str, Template]) -> None:
    outputs = templates["venue-md-eu-west-2-sharing"].to_json()["Outputs"]
    assert set(outputs) == {"MarketDataShareArn", "ReferenceDataShareArn"}
    share_ids = templates["venue-md-eu-west-2-sharing"].find_resources("AWS::RAM::ResourceShare")
    assert {o["Value"]["Fn::GetAtt"][0] for o in outputs.values()} == set(share_ids)


def test_transit_gateway_auto_accept_follows_the_config(
    example_config: Config, cdk_context: dict[str, Any]
) -> None:
    data = example_config.model_dump(mode="json")
    data["regions"]["eu-west-2"]["auto_accept_shared_attachments"] = True
    app = cdk.App(context=cdk_context)
    stacks = add_region_stacks(app, parse_config(data), "eu-west-2")
    Template.from_stack(stacks.network).has_resource_properties(
        "AWS::EC2::TransitGateway", {"AutoAcceptSharedAttachments": "enable", "MulticastSupport": "enable"}
    )


def test_customers_never_change_the_network_stack(
    example_config: Config, cdk_context: dict[str, Any]
) -> None:
    """Revoking the last customer of a domain must not remove an output (or export) of the
    stateful network stack that the deployed sharing stack still uses."""
    nobody = parse_config({**example_config.model_dump(mode="json"), "customers": []})
    built = [
        add_region_stacks(cdk.App(context=cdk_context), c, "eu-west-2") for c in (example_config, nobody)
    ]
    networks = [Template.from_stack(b.network).to_json() for b in built]
    assert networks[0] == networks[1]
    sharing = json.dumps(Template.from_stack(built[0].sharing).to_json())
    assert '{"Fn::ImportValue": "venue-md-eu-west-2-network-MarketDataDomainArn"}' in sharing


def test_config_counts_the_network_acl_entries_the_stacks_make(
    templates: dict[str, Template], example_config: Config
) -> None:
    """The config checks the ACL quota with acl_plan (and the relay's and streams' entries) and the
    network stack's MemberRules arguments; this keeps the two in step with what is synthesized."""
    for region, settings in example_config.regions.items():
        entries = [
            r["Properties"]
            for kind in ("network", "compute")
            for r in templates[f"venue-md-{region}-{kind}"]
            .find_resources("AWS::EC2::NetworkAclEntry")
            .values()
        ]
        made = tuple(sum(1 for e in entries if e["Egress"] is egress) for egress in (False, True))
        room = member_acl_room(example_config.quotas, settings)
        plan = acl_plan(settings.domains, https_egress=True, serve_https_to=settings.vpc_cidr, limit=room)
        links = len(relay_links(settings.relay)) if settings.relay else 0
        streams = stream_acl_plan(settings.streams, settings.vpc_cidr)
        assert made == tuple(len(r) + links + len(s) for r, s in zip(plan, streams, strict=True)), region
        assert bool(streams[0]) == bool(settings.streams)
