"""MemberRules: the members' security group and network ACL generated from the domains' groups."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template
from cdk_support import isolated_vpc_stack

from mcastkit.config import Config, Domain
from mcastkit.config.rules import (
    IGMP,
    NACL_RULES_PER_DIRECTION,
    TCP,
    UDP,
    acl_plan,
    covering_network,
    member_rule_counts,
    port_ranges,
)
from mcastkit.constructs.member_rules import MemberRules


def _member_rules(config: Config, **options: Any) -> tuple[cdk.Stack, MemberRules]:
    """MemberRules for London's domains on a bare VPC's subnets."""
    stack, vpc = isolated_vpc_stack()
    rules = MemberRules(
        stack,
        "Members",
        vpc=vpc,
        subnets=vpc.isolated_subnets,
        domains=config.regions["eu-west-2"].domains,
        **options,
    )
    return stack, rules


@pytest.fixture(scope="module")
def built(example_config: Config) -> tuple[MemberRules, Template]:
    stack, rules = _member_rules(example_config, serve_https_to="10.20.0.0/16")
    return rules, Template.from_stack(stack)


def _members_group(template: Template) -> dict[str, Any]:
    groups = template.find_resources(
        "AWS::EC2::SecurityGroup",
        {"Properties": {"GroupDescription": Match.string_like_regexp("^Multicast")}},
    )
    assert len(groups) == 1
    (group,) = groups.values()
    props = group["Properties"]
    assert isinstance(props, dict)
    return props


def _acl_entries(template: Template) -> list[tuple[bool, int, str, tuple[int, int] | None, int]]:
    entries = []
    for resource in template.find_resources("AWS::EC2::NetworkAclEntry").values():
        p = resource["Properties"]
        ports = (p["PortRange"]["From"], p["PortRange"]["To"]) if "PortRange" in p else None
        entries.append((p["Egress"], p["Protocol"], p["CidrBlock"], ports, p["RuleNumber"]))
    return entries


def test_security_group_ingress_is_igmp_from_the_querier_and_udp_from_sources(built: Any) -> None:
    _, template = built
    ingress = {
        (r["IpProtocol"], r["CidrIp"], r.get("FromPort"), r.get("ToPort"))
        for r in _members_group(template)["SecurityGroupIngress"]
    }
    assert ingress == {
        ("2", "0.0.0.0/32", None, None),
        ("udp", "10.20.0.0/24", 30001, 30003),
        ("udp", "10.20.1.0/24", 30001, 30003),
        # The sequenced stream's group (md-seq) is not contiguous with the books: a range of its own.
        ("udp", "10.20.0.0/24", 30010, 30010),
        ("udp", "10.20.1.0/24", 30010, 30010),
        # And the probes' groups (probe, pod-probe).
        ("udp", "10.20.0.0/24", 30020, 30021),
        ("udp", "10.20.1.0/24", 30020, 30021),
        ("udp", "10.20.10.0/24", 31001, 31001),
    }


def test_security_group_egress_is_igmp_and_udp_to_each_group_only(built: Any) -> None:
    _, template = built
    egress = {
        (r["IpProtocol"], r["CidrIp"], r.get("FromPort"), r.get("ToPort"))
        for r in _members_group(template)["SecurityGroupEgress"]
    }
    expected = {("2", "224.0.0.2/32", None, None), ("tcp", "0.0.0.0/0", 443, 443)}
    for address, port in (
        ("239.10.1.1", 30001),
        ("239.10.1.2", 30002),
        ("239.10.1.3", 30003),
        ("239.10.1.10", 30010),
        ("239.10.1.20", 30020),
        ("239.10.1.21", 30021),
        ("239.10.2.1", 31001),
    ):
        expected |= {("2", f"{address}/32", None, None), ("udp", f"{address}/32", port, port)}
    assert egress == expected
    assert all(r["IpProtocol"] != "-1" for r in _members_group(template)["SecurityGroupEgress"])


def test_network_acl_mirrors_the_rules_per_domain(built: Any) -> None:
    _, template = built
    entries = {e[:4] for e in _acl_entries(template)}
    assert entries == {
        (False, IGMP, "0.0.0.0/32", None),
        (False, UDP, "10.20.0.0/23", (30001, 30021)),  # the two market-data sources, collapsed
        (False, UDP, "10.20.10.0/24", (31001, 31001)),
        (False, TCP, "0.0.0.0/0", (1024, 65535)),
        (False, TCP, "10.20.0.0/16", (443, 443)),
        (True, IGMP, "224.0.0.2/32", None),
        (True, IGMP, "239.10.1.0/27", None),  # 239.10.1.1-3, the sequenced .10, the probes' .20 and .21
        (True, UDP, "239.10.1.0/27", (30001, 30021)),
        (True, IGMP, "239.10.2.1/32", None),
        (True, UDP, "239.10.2.1/32", (31001, 31001)),
        (True, TCP, "0.0.0.0/0", (443, 443)),
        (True, TCP, "10.20.0.0/16", (1024, 65535)),
    }
    template.has_resource_properties(
        "AWS::EC2::NetworkAclEntry",
        {
            "RuleNumber": 100,
            "Egress": False,
            "Protocol": IGMP,
            "CidrBlock": "0.0.0.0/32",
            "RuleAction": "allow",
        },
    )


def test_network_acl_is_associated_with_every_member_subnet(built: Any) -> None:
    _, template = built
    template.resource_count_is("AWS::EC2::NetworkAcl", 1)
    template.resource_count_is("AWS::EC2::SubnetNetworkAclAssociation", 2)


def test_rule_numbers_are_unique_per_direction(built: Any) -> None:
    _, template = built
    entries = _acl_entries(template)
    for egress in (False, True):
        numbers = [e[4] for e in entries if e[0] is egress]
        assert len(numbers) == len(set(numbers)) and min(numbers) == 100


def test_allow_appends_an_entry_with_the_next_rule_number(example_config: Config) -> None:
    stack, rules = _member_rules(example_config)
    inbound_before = len(rules.inbound_rules)
    rules.allow(egress=False, protocol=TCP, cidr="192.168.40.0/24", ports=(7400, 7400))
    Template.from_stack(stack).has_resource_properties(
        "AWS::EC2::NetworkAclEntry",
        {
            "Egress": False,
            "CidrBlock": "192.168.40.0/24",
            "PortRange": {"From": 7400, "To": 7400},
            "RuleNumber": 100 + 10 * inbound_before,
        },
    )


def test_without_https_egress_members_reach_only_the_groups(example_config: Config) -> None:
    stack, _ = _member_rules(example_config, https_egress=False)
    template = Template.from_stack(stack)
    assert all(r["IpProtocol"] != "tcp" for r in _members_group(template)["SecurityGroupEgress"])
    assert all(e[1] != TCP for e in _acl_entries(template))


def test_needs_domains_and_subnets(example_config: Config) -> None:
    stack, vpc = isolated_vpc_stack()
    with pytest.raises(ValueError, match="at least one domain"):
        MemberRules(stack, "A", vpc=vpc, subnets=vpc.isolated_subnets, domains=[])
    with pytest.raises(ValueError, match="at least one subnet"):
        MemberRules(stack, "B", vpc=vpc, subnets=[], domains=example_config.regions["eu-west-2"].domains)


def test_port_ranges_merge_contiguous_ports() -> None:
    assert port_ranges([30003, 30001, 30002, 30007, 30001]) == [(30001, 30003), (30007, 30007)]
    assert port_ranges([]) == []


def test_covering_network_is_the_smallest_supernet() -> None:
    def cover(*addresses: str) -> str:
        return str(covering_network(IPv4Address(a) for a in addresses))

    assert cover("239.10.1.1", "239.10.1.3") == "239.10.1.0/30"
    assert cover("239.1.1.1") == "239.1.1.1/32"
    assert cover("239.0.0.1", "239.128.0.1") == "239.0.0.0/8"


def _domain(index: int) -> Domain:
    return Domain.model_validate(
        {
            "name": f"d{index}",
            "groups": [{"name": "g", "address": f"239.1.{index}.1", "port": 30000 + index}],
            "source_cidrs": [f"10.{index}.0.0/24"],
        }
    )


def test_acl_plan_merges_domains_when_the_quota_would_be_exceeded() -> None:
    few = [_domain(i) for i in range(3)]
    inbound, outbound = acl_plan(few, https_egress=True, serve_https_to=None)
    assert sum(1 for r in outbound if r.protocol == UDP) == 3  # one per domain
    # What else shares the ACL (the relay's entries) leaves less room: merged sooner.
    inbound, outbound = acl_plan(few, https_egress=True, serve_https_to=None, limit=7)
    assert len(outbound) <= 7
    assert [(r.cidr, r.ports) for r in outbound if r.protocol == UDP] == [("239.1.0.0/22", (30000, 30002))]
    many = [_domain(i) for i in range(12)]
    inbound, outbound = acl_plan(many, https_egress=True, serve_https_to=None)
    assert max(len(inbound), len(outbound)) <= NACL_RULES_PER_DIRECTION
    udp_out = [r for r in outbound if r.protocol == UDP]
    assert [(r.cidr, r.ports) for r in udp_out] == [("239.1.0.0/20", (30000, 30011))]
    # Every source is still admitted, now to the merged port span.
    assert {(r.cidr, r.ports) for r in inbound if r.protocol == UDP} == {
        (f"10.{i}.0.0/24", (30000, 30011)) for i in range(12)
    }


def test_config_counts_the_security_group_rules_the_construct_makes(
    built: Any, example_config: Config
) -> None:
    _, template = built
    group = _members_group(template)
    made = (len(group["SecurityGroupIngress"]), len(group["SecurityGroupEgress"]))
    assert made == member_rule_counts(example_config.regions["eu-west-2"].domains)
