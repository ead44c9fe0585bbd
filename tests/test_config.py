"""Every bad input a user can write: one problem, naming the field path and the bad value, and
`mcastkit validate` exits 2 with one line per problem (file and line first), never a traceback.

Each case changes the example config in one way. Most cases are a single mistake and must
produce exactly one problem: follow-on errors of one root cause are suppressed.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mcastkit.cli import Console, main
from mcastkit.config import ConfigError, parse_config
from mcastkit.exit import ExitStatus

ROOT = Path(__file__).resolve().parent.parent
Mutation = Callable[[dict[str, Any]], None]


def _london(data: dict[str, Any]) -> dict[str, Any]:
    region = data["regions"]["eu-west-2"]
    assert isinstance(region, dict)
    return region


def _set(*path: str | int, value: Any) -> Mutation:
    """Set the field at ``path`` (below the London region when it starts with a field of a region)."""

    def mutate(data: dict[str, Any]) -> None:
        node: Any = data
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return mutate


def _london_set(*path: str | int, value: Any) -> Mutation:
    return _set("regions", "eu-west-2", *path, value=value)


def _drop(*path: str | int) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        node: Any = data
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]

    return mutate


def _rename_region(old: str, new: str) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        data["regions"] = {new if k == old else k: v for k, v in data["regions"].items()}

    return mutate


def _many_domains(count: int) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        _london(data)["domains"] += [
            {
                "name": f"extra-{n}",
                "source_cidrs": ["10.20.0.0/24"],
                "groups": [{"name": "g", "address": f"239.20.{n}.1", "port": 40000}],
            }
            for n in range(count)
        ]

    return mutate


def _rename_domain(old: str, new: str) -> Mutation:
    """Rename a London domain everywhere it is named: the one mistake left is the new name."""

    def mutate(data: dict[str, Any]) -> None:
        london = _london(data)
        for section in (
            *london["domains"],
            *london["subnets"],
            london["relay"],
            london["probe"],
            london["eks"],
        ):
            for key in ("name", "domain"):
                if section.get(key) == old:
                    section[key] = new
        for customer in data["customers"]:
            for entitlement in customer["entitlements"]:
                if entitlement["region"] == "eu-west-2":
                    entitlement["domains"] = [new if d == old else d for d in entitlement["domains"]]

    return mutate


def _both(*mutations: Mutation) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        for mutation in mutations:
            mutation(data)

    return mutate


def _tokyo_into(prefix: str) -> Mutation:
    """Renumber Tokyo (10.30.x) into ``prefix`` (its VPC, subnets and sources alike)."""

    def mutate(data: dict[str, Any]) -> None:
        tokyo = data["regions"]["ap-northeast-1"]
        tokyo["vpc_cidr"] = tokyo["vpc_cidr"].replace("10.30.", prefix)
        for subnet in tokyo["subnets"]:
            subnet["cidr"] = subnet["cidr"].replace("10.30.", prefix)
        for domain in tokyo["domains"]:
            domain["source_cidrs"] = [c.replace("10.30.", prefix) for c in domain["source_cidrs"]]

    return mutate


LONG = "a" * 63
GROUP_1 = ("domains", 0, "groups", 1)
SHARE = "resource-share/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f"
TGW = "tgw-0123456789abcdef0"


@dataclass(frozen=True)
class Case:
    """One mistake: the field path of the (first) problem, text of the value it must show, and
    how many problems (1 unless the one mistake is really made in several places)."""

    id: str
    mutate: Mutation
    path: str
    value: str
    count: int = 1


# fmt: off
def _overlay_in_the_vpc(data: dict[str, Any]) -> None:
    overlay = data["overlays"][0]
    overlay["cidr"] = "10.20.200.0/24"
    for index, host in enumerate(overlay["hosts"], start=1):
        host["address"] = f"10.20.200.{index}"


BAD_INPUTS: list[Case] = [
    # Groups
    Case("group-outside-multicast-range", _london_set(*GROUP_1, "address", value="10.1.1.1"),
         "regions.eu-west-2.domains[0].groups[1].address", "10.1.1.1"),
    Case("group-in-link-local-block", _london_set(*GROUP_1, "address", value="224.0.0.251"),
         "regions.eu-west-2.domains[0].groups[1].address", "224.0.0.251"),
    Case("group-not-an-address", _london_set(*GROUP_1, "address", value="239.1.1"),
         "regions.eu-west-2.domains[0].groups[1].address", "'239.1.1'"),
    Case("group-port-zero", _london_set(*GROUP_1, "port", value=0),
         "regions.eu-west-2.domains[0].groups[1].port", "(got 0)"),
    Case("group-port-not-a-number", _london_set(*GROUP_1, "port", value="http"),
         "regions.eu-west-2.domains[0].groups[1].port", "(got http)"),
    Case("duplicate-group-address-and-port",
         lambda d: _london(d)["domains"][0]["groups"][1].update(address="239.10.1.1", port=30001),
         "regions.eu-west-2.domains[0].groups[1]", "239.10.1.1:30001"),
    Case("duplicate-group-names",
         _both(_london_set(*GROUP_1, "name", value="btc-book"), _drop("regions", "eu-west-2", "streams")),
         "regions.eu-west-2.domains[0].groups[1].name", "'btc-book'"),
    Case("group-name-with-capitals", _london_set(*GROUP_1, "name", value="ETH"),
         "regions.eu-west-2.domains[0].groups[1].name", "(got ETH)"),
    # Domains
    Case("domain-mode-typo", _london_set("domains", 0, "mode", value="igmp"),
         "regions.eu-west-2.domains[0].mode", "(got igmp)"),
    Case("igmpv2-domain-with-static-sources",
         _london_set("domains", 0, "static_sources", value=["eni-0123456789abcdef0"]),
         "regions.eu-west-2.domains[0].static_sources", "eni-0123456789abcdef0"),
    Case("static-source-not-an-eni", _london_set("domains", 1, "static_sources", value=["i-0123456789abcdef0"]),
         "regions.eu-west-2.domains[1].static_sources[0]", "i-0123456789abcdef0"),
    Case("static-domain-without-sources", _london_set("domains", 1, "mode", value="static"),
         "regions.eu-west-2.domains[1].static_sources", "only registered sources may send"),
    Case("more-static-sources-than-the-quota",
         _both(_london_set("domains", 1, "mode", value="static"),
               _london_set("domains", 1, "static_sources", value=["eni-0123456789abcdef0", "eni-0123456789abcdef1"])),
         "regions.eu-west-2.domains[1].static_sources", "over quotas.sources_per_group (1"),
    Case("igmpv2-domain-with-static-members",
         _london_set("domains", 1, "static_members", value=["eni-0123456789abcdef2"]),
         "regions.eu-west-2.domains[1].static_members", "eni-0123456789abcdef2"),
    Case("source-cidrs-the-whole-internet", _london_set("domains", 1, "source_cidrs", value=["0.0.0.0/0"]),
         "regions.eu-west-2.domains[1].source_cidrs[0]", "0.0.0.0/0"),
    Case("source-cidr-outside-the-vpc", _london_set("domains", 1, "source_cidrs", value=["10.99.0.0/24"]),
         "regions.eu-west-2.domains[1].source_cidrs[0]", "10.99.0.0/24"),
    Case("relay-subnet-outside-source-cidrs", _london_set("domains", 0, "source_cidrs", value=["10.20.0.0/24"]),
         "regions.eu-west-2.domains[0].source_cidrs", "add 10.20.1.0/24"),
    Case("duplicate-domain-names", lambda d: _london(d)["domains"].append(dict(_london(d)["domains"][0])),
         "regions.eu-west-2.domains[2].name", "'market-data'"),
    Case("names-that-differ-only-by-hyphens", _rename_domain("reference-data", "market--data"),
         "regions.eu-west-2.domains[1].name", "MarketData"),
    Case("more-domains-than-zones", _many_domains(17),
         "regions.eu-west-2.domains", "19 domains in 3 availability zones"),
    Case("domain-without-a-subnet", lambda d: _london(d)["subnets"].pop(2),
         "regions.eu-west-2.domains[1]", "'reference-data' has no subnet"),
    # Subnets and the VPC
    Case("subnet-of-an-unknown-domain", _london_set("subnets", 2, "domain", value="reference"),
         "regions.eu-west-2.subnets[2].domain", "'reference'"),
    Case("overlapping-subnet-cidrs", _london_set("subnets", 1, "cidr", value="10.20.0.128/25"),
         "regions.eu-west-2.subnets[1].cidr", "10.20.0.128/25"),
    Case("subnet-cidrs-that-spell-the-same-id",
         _both(_london_set("subnets", 0, "cidr", value="10.20.1.160/28"), _london_set("subnets", 1, "cidr", value="10.20.116.0/28"),
               _london_set("domains", 0, "source_cidrs", value=["10.20.0.0/17"])),
         "regions.eu-west-2.subnets[1].cidr", "spell the same CloudFormation id (Subnet1020116028)"),
    Case("subnet-smaller-than-a-28", _london_set("subnets", 2, "cidr", value="10.20.10.0/29"),
         "regions.eu-west-2.subnets[2].cidr", "10.20.10.0/29"),
    Case("subnet-cidr-with-host-bits", _london_set("subnets", 1, "cidr", value="10.20.1.1/24"),
         "regions.eu-west-2.subnets[1].cidr", "10.20.1.1/24"),
    Case("subnet-outside-the-vpc", _london_set("subnets", 2, "cidr", value="10.21.10.0/24"),
         "regions.eu-west-2.subnets[2].cidr", "10.21.10.0/24"),
    Case("two-multicast-subnets-in-one-zone", _london_set("subnets", 2, "availability_zone", value="eu-west-2a"),
         "regions.eu-west-2.subnets[2].availability_zone", "eu-west-2a"),
    Case("subnet-zone-not-listed", _london_set("availability_zones", value=["eu-west-2a", "eu-west-2b"]),
         "regions.eu-west-2.subnets[2].availability_zone", "eu-west-2c"),
    Case("zone-of-another-region", _london_set("availability_zones", 2, value="eu-west-1c"),
         "regions.eu-west-2.availability_zones[2]", "eu-west-1c"),
    Case("zone-name-malformed", _london_set("availability_zones", 1, value="euwest2b"),
         "regions.eu-west-2.availability_zones[1]", "'euwest2b' is not an availability zone name"),
    Case("subnet-zone-name-malformed", _london_set("subnets", 1, "availability_zone", value="eu-west-2"),
         "regions.eu-west-2.subnets[1].availability_zone", "'eu-west-2' is not an availability zone name"),
    Case("zone-listed-twice", _london_set("availability_zones", 2, value="eu-west-2a"),
         "regions.eu-west-2.availability_zones[2]", "eu-west-2a"),
    Case("vpc-cidr-in-the-multicast-range", _london_set("vpc_cidr", value="224.20.0.0/16"),
         "regions.eu-west-2.vpc_cidr", "224.20.0.0/16"),
    Case("vpc-cidr-too-large", _london_set("vpc_cidr", value="10.0.0.0/8"), "regions.eu-west-2.vpc_cidr", "10.0.0.0/8"),
    Case("overlapping-vpc-cidrs", _tokyo_into("10.20."), "regions.ap-northeast-1.vpc_cidr", "10.20.0.0/16"),
    Case("asn-not-private", _london_set("transit_gateway_asn", value=65535),
         "regions.eu-west-2.transit_gateway_asn", "65535"),
    # Capacity
    Case("non-nitro-instance-type", _london_set("capacity", "instance_type", value="m4.large"),
         "regions.eu-west-2.capacity.instance_type", "m4.large"),
    Case("capacity-min-over-max", _london_set("capacity", "min", value=5),
         "regions.eu-west-2.capacity.min", "min 5 is greater than max 4"),
    Case("capacity-without-room-to-replace-a-host", _london_set("capacity", "max", value=3),
         "regions.eu-west-2.capacity.max", "max 3 leaves no room above min 3"),
    Case("instance-type-malformed", _london_set("capacity", "instance_type", value="c6in large"),
         "regions.eu-west-2.capacity.instance_type", "'c6in large'"),
    # Relay
    Case("relay-port-below-1024", _london_set("relay", "port", value=0), "regions.eu-west-2.relay.port", "(got 0)"),
    Case("relay-port-is-the-metrics-port", _london_set("relay", "port", value=9400),
         "regions.eu-west-2.relay.port", "9400"),
    Case("datacenter-cidrs-the-whole-internet",
         _london_set("relay", "datacenter_cidrs", value=["0.0.0.0/1", "128.0.0.0/1"]),
         "regions.eu-west-2.relay.datacenter_cidrs[0]", "0.0.0.0/1"),
    Case("datacenter-cidr-inside-the-vpc", _london_set("relay", "datacenter_cidrs", value=["192.168.40.0/24", "10.20.128.0/24"]),
         "regions.eu-west-2.relay.datacenter_cidrs[1]", "10.20.128.0/24"),
    Case("relay-connect-not-an-endpoint", _london_set("relay", "connect", value=["dc-ingress:7400"]),
         "regions.eu-west-2.relay.connect[0]", "'dc-ingress:7400'"),
    Case("relay-connect-outside-datacenter", _london_set("relay", "connect", value=["192.168.41.10:7400"]),
         "regions.eu-west-2.relay.connect[0]", "192.168.41.10:7400"),
    Case("relay-on-a-static-sources-domain",
         _both(_london_set("domains", 0, "mode", value="static"), _drop("regions", "eu-west-2", "probe"),
               _drop("regions", "eu-west-2", "streams"), _drop("regions", "eu-west-2", "eks"),
               _london_set("domains", 0, "static_sources", value=["eni-0123456789abcdef0"])),
         "regions.eu-west-2.relay.domain", "'market-data' is a static-sources domain"),
    Case("relay-unknown-domain", _london_set("relay", "domain", value="options"),
         "regions.eu-west-2.relay.domain", "'options'"),
    Case("relay-secret-name-not-arn", _london_set("relay", "secret_arn", value="relay-secret"),
         "regions.eu-west-2.relay.secret_arn", "(got relay-secret)"),
    Case("more-network-acl-entries-than-the-quota",
         _london_set("relay", "connect", value=[f"192.168.40.{n}:7400" for n in range(1, 17)]),
         "regions.eu-west-2.domains", "24 inbound"),  # 5 members', 16 relay links, 3 the stream's
    Case("relay-listening-without-connect", _drop("regions", "eu-west-2", "relay", "connect"),
         "regions.eu-west-2.relay.connect", "address changes at every deployment"),
    Case("relay-without-a-route-to-the-datacenter", _drop("regions", "eu-west-2", "relay", "route_via"),
         "regions.eu-west-2.relay.route_via", "no route to datacenter_cidrs"),
    Case("relay-secret-of-another-region",
         _london_set("relay", "secret_arn", value="arn:aws:secretsmanager:eu-west-1:111111111111:secret:venue-md/relay-AbCdEf"),
         "regions.eu-west-2.relay.secret_arn", "only through the eu-west-2 endpoint"),
    Case("relay-secrets-that-differ-between-regions",
         _set("regions", "ap-northeast-1", "relay", "secret_arn",
              value="arn:aws:secretsmanager:ap-northeast-1:111111111111:secret:venue-md/other-AbCdEf"),
         "regions.ap-northeast-1.relay.secret_arn", "is not the one regions.eu-west-2.relay names"),
    Case("relay-secrets-generated-in-two-regions", _drop("regions", "eu-west-2", "relay", "secret_arn"),
         "regions.eu-west-2.relay.secret_arn", "required with relays in several regions"),
    # Probe
    Case("probe-rate-beyond-a-proof-of-delivery", _london_set("probe", "rate", value=1_000_000),
         "regions.eu-west-2.probe.rate", "(got 1000000)"),
    Case("probe-unknown-group", _london_set("probe", "group", value="instruments"),
         "regions.eu-west-2.probe.group", "'instruments'"),
    Case("probe-on-a-feed-group", _london_set("probe", "group", value="trades"),
         "regions.eu-west-2.probe.group", "'trades' is a feed group: the probe's sender would publish"),
    # Sequenced streams
    Case("stream-unknown-domain", _london_set("streams", 0, "domain", value="options"),
         "regions.eu-west-2.streams[0].domain", "'options' is not a domain of this region"),
    Case("stream-output-also-an-input", _london_set("streams", 0, "output", value="btc-book"),
         "regions.eu-west-2.streams[0].output", "'btc-book' is also one of the inputs"),
    Case("stream-output-not-a-group", _london_set("streams", 0, "output", value="instruments"),
         "regions.eu-west-2.streams[0].output", "'instruments' is not a group of domain 'market-data'"),
    Case("stream-output-a-probe-group", _london_set("streams", 0, "output", value="probe"),
         "regions.eu-west-2.streams[0].output", "'probe' is a probe group"),
    Case("stream-session-name-too-long", _london_set("streams", 0, "name", value="market-data-seq"),
         "regions.eu-west-2.streams[0].name", "'market-data-seq' has 15 characters"),
    Case("stream-input-unknown", _london_set("streams", 0, "inputs", value=["btc-book", "sol-book"]),
         "regions.eu-west-2.streams[0].inputs[1]", "'sol-book' is not a group of domain"),
    Case("stream-input-listed-twice", _london_set("streams", 0, "inputs", value=["btc-book", "btc-book"]),
         "regions.eu-west-2.streams[0].inputs[1]", "'btc-book' is listed twice"),
    Case("stream-input-a-probe-group", _london_set("streams", 0, "inputs", value=["btc-book", "pod-probe"]),
         "regions.eu-west-2.streams[0].inputs[1]", "'pod-probe' is a probe group"),
    Case("stream-retransmit-port-clashes-with-an-input", _london_set("streams", 0, "retransmit_port", value=30002),
         "regions.eu-west-2.streams[0].retransmit_port", "30002 is the UDP port of an input group"),
    Case("stream-replay-port-privileged", _london_set("streams", 0, "replay_port", value=443),
         "regions.eu-west-2.streams[0].replay_port", "must be at least 1024 (got 443)"),
    Case("stream-fsync-typo", _london_set("streams", 0, "fsync", value="sometimes"),
         "regions.eu-west-2.streams[0].fsync", "(got sometimes)"),
    Case("stream-two-on-one-output",
         _both(lambda d: _london(d)["streams"].append({**_london(d)["streams"][0], "name": "md-seq-2"}),
               _london_set("capacity", value={"instance_type": "c6in.large", "min": 4, "max": 5})),
         "regions.eu-west-2.streams[1].output", "already the output of streams[0] (md-seq)"),
    Case("stream-names-twice",
         _both(lambda d: _london(d)["streams"].append({**_london(d)["streams"][0], "output": "trades"}),
               _london_set("streams", 1, "output", value="eth-book"),
               _london_set("streams", 1, "inputs", value=["btc-book"]),
               _london_set("capacity", value={"instance_type": "c6in.large", "min": 4, "max": 5})),
         "regions.eu-west-2.streams[1].name", "stream name 'md-seq' is used twice"),
    Case("stream-on-a-static-sources-domain",
         _both(_london_set("domains", 0, "mode", value="static"), _drop("regions", "eu-west-2", "probe"),
               _drop("regions", "eu-west-2", "relay"), _drop("regions", "eu-west-2", "eks"),
               _london_set("domains", 0, "static_sources", value=["eni-0123456789abcdef0"])),
         "regions.eu-west-2.streams[0].domain", "the sequencer's task ENIs change"),
    Case("stream-sequencer-without-a-host",
         _london_set("capacity", value={"instance_type": "c6in.large", "min": 2, "max": 4}),
         "regions.eu-west-2.capacity.min", "a sequencer per stream"),
    Case("stream-entitled-to-an-ou",
         lambda d: d["customers"][2]["entitlements"].append({"region": "eu-west-2", "domains": ["market-data"]}),
         "customers[2].principal", "PrivateLink has no OU principal"),
    Case("stream-endpoint-service-of-another-region",
         _london_set("shared", value={"transit_gateway_id": TGW, "endpoint_services": {
             "md-seq": "com.amazonaws.vpce.eu-west-1.vpce-svc-0123456789abcdef0"}}),
         "regions.eu-west-2.shared.endpoint_services.md-seq", "an endpoint service of eu-west-1"),
    Case("stream-endpoint-service-malformed",
         _london_set("shared", value={"transit_gateway_id": TGW, "endpoint_services": {"md-seq": "vpce-svc-1"}}),
         "regions.eu-west-2.shared.endpoint_services.md-seq", "'vpce-svc-1' is not an endpoint service name"),
    # Recorded ids
    Case("share-arn-of-another-region",
         _london_set("shared", value={"transit_gateway_id": TGW,
                                      "share_arns": {"market-data": f"arn:aws:ram:eu-west-1:111111111111:{SHARE}"}}),
         "regions.eu-west-2.shared.share_arns.market-data", "eu-west-1"),
    Case("share-arn-of-another-account",
         _london_set("shared", value={"transit_gateway_id": TGW,
                                      "share_arns": {"market-data": f"arn:aws:ram:eu-west-2:999999999999:{SHARE}"}}),
         "regions.eu-west-2.shared.share_arns.market-data", "999999999999"),
    Case("domain-id-malformed",
         _london_set("shared", value={"transit_gateway_id": TGW, "domain_ids": {"market-data": TGW}}),
         "regions.eu-west-2.shared.domain_ids.market-data", f"'{TGW}'"),
    # Regions
    Case("region-typo", _rename_region("eu-west-2", "eu-west-22"), "regions.eu-west-22", "did you mean eu-west-2?"),
    Case("region-outside-allowlist", _set("allowed_regions", value=["ap-northeast-1"]),
         "regions.eu-west-2", "'eu-west-2'"),
    Case("no-regions", _set("regions", value={}), "regions", "needs at least 1"),
    # Top level
    Case("unknown-top-level-field", lambda d: d.update(customer=d.pop("customers")),
         "customer", "did you mean customers?"),
    Case("missing-project", _drop("project"), "project", "required"),
    Case("project-starting-with-a-digit", _set("project", value="1venue"), "project", "'1venue'"),
    Case("provider-account-not-12-digits", _set("provider_account", value="12345678901"),
         "provider_account", "12345678901"),
    Case("organization-id-malformed", _set("organization_id", value="exampleorg"),
         "organization_id", "(got exampleorg)"),
    Case("organization-id-missing-with-an-ou-customer", _drop("organization_id"),
         "organization_id", "set organization_id: o-exampleorg1"),
    Case("more-groups-than-quota", _set("quotas", value={"groups_per_transit_gateway": 3}),
         "regions.eu-west-2.domains", "7 groups exceed the quota of 3"),
    Case("more-domains-than-quota", _set("quotas", value={"domains_per_transit_gateway": 1}),
         "regions.eu-west-2.domains", "2 domains exceed the quota of 1", count=2),
    Case("more-security-group-rules-than-the-quota",
         lambda d: _london(d)["domains"][0]["groups"].extend(
             {"name": f"extra-{n}", "address": f"239.10.9.{n}", "port": 40000 + n} for n in range(1, 30)),
         "regions.eu-west-2.domains", "74 outbound"),
    # EKS
    Case("eks-unknown-domain", _london_set("eks", "domain", value="options"),
         "regions.eu-west-2.eks.domain", "'options' is not a domain of this region"),
    Case("eks-on-a-static-sources-domain",
         _both(_london_set("domains", 0, "mode", value="static"), _drop("regions", "eu-west-2", "probe"),
               _drop("regions", "eu-west-2", "streams"), _drop("regions", "eu-west-2", "relay"),
               _london_set("domains", 0, "static_sources", value=["eni-0123456789abcdef0"])),
         "regions.eu-west-2.eks.domain", "the nodes' multicast ENIs are created at each launch"),
    Case("eks-node-subnet-outside-the-vpc", _london_set("eks", "node_subnets", 0, "cidr", value="10.99.50.0/24"),
         "regions.eu-west-2.eks.node_subnets[0].cidr", "is not inside vpc_cidr 10.20.0.0/16"),
    Case("eks-node-subnet-over-a-multicast-subnet", _london_set("eks", "node_subnets", 0, "cidr", value="10.20.0.0/25"),
         "regions.eu-west-2.eks.node_subnets[0].cidr", "10.20.0.0/25 overlaps subnets[0]"),
    Case("eks-node-subnets-overlap", _london_set("eks", "node_subnets", 1, "cidr", value="10.20.50.128/25"),
         "regions.eu-west-2.eks.node_subnets[1].cidr", "overlaps eks.node_subnets[0]"),
    Case("eks-node-subnets-twice-in-a-zone", _london_set("eks", "node_subnets", 1, "availability_zone", value="eu-west-2a"),
         "regions.eu-west-2.eks.node_subnets[1].availability_zone", "eu-west-2a already has node_subnets[0]"),
    Case("eks-node-subnets-in-one-zone",
         _both(_drop("regions", "eu-west-2", "eks", "node_subnets", 1), _london_set("eks", "probe", "receivers", value=1)),
         "regions.eu-west-2.eks.node_subnets", "which must span at least 2"),
    Case("eks-node-subnet-too-small", _london_set("eks", "node_subnets", 0, "cidr", value="10.20.50.0/26"),
         "regions.eu-west-2.eks.node_subnets[0].cidr", "has 59 usable addresses; 2 nodes with 44 pods each need 90"),
    Case("eks-no-node-where-the-domain-is",
         _both(_london_set("eks", "domain", value="reference-data"), _drop("regions", "eu-west-2", "eks", "probe")),
         "regions.eu-west-2.eks.node_subnets", "domain 'reference-data' has a multicast subnet (eu-west-2c)"),
    Case("eks-not-nitro", _london_set("eks", "instance_type", value="m4.xlarge"),
         "regions.eu-west-2.eks.instance_type", "not a Nitro instance type"),
    Case("eks-instance-type-not-in-the-table", _london_set("eks", "instance_type", value="c6in.12xlarge"),
         "regions.eu-west-2.eks.instance_type", "or set eks.max_pods"),
    Case("eks-kubernetes-version-unknown", _london_set("eks", "kubernetes_version", value="1.20"),
         "regions.eu-west-2.eks.kubernetes_version", "is not a Kubernetes version mcastkit validates"),
    Case("eks-kubernetes-version-a-number", _london_set("eks", "kubernetes_version", value=1.3),
         "regions.eu-west-2.eks.kubernetes_version", 'write it in quotes'),
    Case("eks-admin-role-not-an-arn", _london_set("eks", "admin_roles", value=["platform-admin"]),
         "regions.eu-west-2.eks.admin_roles[0]", "must be an IAM role ARN"),
    Case("eks-admin-role-twice",
         _london_set("eks", "admin_roles", value=["arn:aws:iam::111111111111:role/a", "arn:aws:iam::111111111111:role/a"]),
         "regions.eu-west-2.eks.admin_roles[1]", "is listed twice"),
    Case("eks-no-admin-role", _london_set("eks", "admin_roles", value=[]),
         "regions.eu-west-2.eks.admin_roles", "at least 1"),
    Case("eks-public-endpoint-open-to-all", _london_set("eks", "endpoint", value="public-and-private"),
         "regions.eu-west-2.eks.public_access_cidrs", "to the whole internet"),
    Case("eks-public-cidrs-on-a-private-endpoint", _london_set("eks", "public_access_cidrs", value=["203.0.113.0/24"]),
         "regions.eu-west-2.eks.public_access_cidrs", "only for endpoint: public-and-private"),
    Case("eks-admin-cidr-the-internet", _london_set("eks", "admin_cidrs", value=["0.0.0.0/0"]),
         "regions.eu-west-2.eks.admin_cidrs[0]", "wider than a /8"),
    Case("eks-probe-unknown-group", _london_set("eks", "probe", "group", value="nope"),
         "regions.eu-west-2.eks.probe.group", "'nope' is not a group of domain 'market-data'"),
    Case("eks-probe-on-a-feed-group", _london_set("eks", "probe", "group", value="md-seq"),
         "regions.eu-west-2.eks.probe.group", "'md-seq' is a feed group"),
    Case("eks-probe-more-pods-than-nodes", _london_set("eks", "probe", "receivers", value=4),
         "regions.eu-west-2.eks.probe.receivers", "4 receivers and a sender need 5 multicast pods"),
    # Customers
    Case("account-id-unquoted-in-yaml", _set("customers", 1, "principal", value=333333333333),
         "customers[1].principal", 'write "333333333333"'),
    Case("customer-account-not-12-digits", _set("customers", 1, "principal", value="33333333333a"),
         "customers[1].principal", "33333333333a"),
    Case("customer-is-the-provider", _set("customers", 1, "principal", value="111111111111"),
         "customers[1].principal", "111111111111"),
    Case("same-principal-twice", _set("customers", 1, "principal", value="222222222222"),
         "customers[1].principal", "222222222222"),
    Case("duplicate-customer-names", _set("customers", 2, "name", value="alpha-trading"),
         "customers[2].name", "'alpha-trading'"),
    Case("ou-of-another-organization",
         _set("customers", 2, "principal", value="arn:aws:organizations::444444444444:ou/o-otherorg123/ou-ab12-cdef3456"),
         "customers[2].principal", "o-otherorg123"),
    Case("customer-entitled-to-unknown-region",
         lambda d: d["customers"][0]["entitlements"].append({"region": "us-east-1", "domains": ["market-data"]}),
         "customers[0].entitlements[2].region", "'us-east-1'"),
    Case("customer-entitled-to-unknown-domain", _set("customers", 1, "entitlements", 0, "domains", value=["options"]),
         "customers[1].entitlements[0].domains[0]", "'options'"),
    Case("customer-region-listed-twice",
         lambda d: d["customers"][1]["entitlements"].append({"region": "eu-west-2", "domains": ["reference-data"]}),
         "customers[1].entitlements[1].region", "eu-west-2"),
    Case("customer-entitlement-without-domains", _set("customers", 1, "entitlements", 0, "domains", value=[]),
         "customers[1].entitlements[0].domains", "needs at least 1"),
    Case("more-customers-than-members-per-group", _set("quotas", value={"customers_per_domain": 1}),
         "regions.eu-west-2.domains[0]", "2 customers", count=2),
    Case("static-members-and-customers-over-the-members-per-group",
         _both(_set("quotas", value={"customers_per_domain": 2}), _london_set("domains", 0, "mode", value="static"),
               _london_set("domains", 0, "static_sources", value=["eni-0123456789abcdef0"]),
               _london_set("domains", 0, "static_members", value=["eni-0123456789abcdef1", "eni-0123456789abcdef2"]),
               _drop("regions", "eu-west-2", "relay"), _drop("regions", "eu-west-2", "probe"),
               _drop("regions", "eu-west-2", "streams"), _drop("regions", "eu-west-2", "eks")),
         "regions.eu-west-2.domains[0]", "less 2 static_members"),
    # Overlays
    Case("overlay-host-twice", lambda d: d["overlays"][0]["hosts"].append(dict(d["overlays"][0]["hosts"][0])),
         "overlays[0].hosts[2].name", "host name 'ldn-a' is used twice", count=3),
    Case("overlay-address-outside-its-cidr", lambda d: d["overlays"][0]["hosts"][1].update(address="10.98.0.2"),
         "overlays[0].hosts[1].address", "outside the overlay's cidr 10.99.0.0/24"),
    Case("overlay-group-not-multicast", lambda d: d["overlays"][0].update(groups=["10.1.1.1:5000"]),
         "overlays[0].groups[0]", "10.1.1.1"),
    Case("overlay-host-in-a-multicast-subnet", lambda d: d["overlays"][0]["hosts"][0].update(underlay="10.20.0.50"),
         "overlays[0].hosts[0].underlay", "multicast subnet 10.20.0.0/24"),
    Case("overlay-cidr-overlaps-a-vpc", _overlay_in_the_vpc,
         "overlays[0].cidr", "overlaps regions.eu-west-2.vpc_cidr"),
    Case("overlay-group-on-its-vxlan-port", lambda d: d["overlays"][0].update(groups=["239.10.1.1:4789"]),
         "overlays[0].groups[0]", "the overlay's own VXLAN port 4789"),
    Case("overlay-more-hosts-than-a-security-group-holds",
         lambda d: d["overlays"][0]["hosts"].extend(
             {"name": f"dc-{i}", "underlay": f"192.168.41.{i}", "address": f"10.99.0.{i}"} for i in range(3, 62)),
         "overlays[0].hosts", "61 hosts need as many inbound (and outbound) rules in the overlay's security group"),
    Case("overlay-wireguard-on-another-overlays-vxlan-port",
         lambda d: d["overlays"].append({
             "name": "ref", "vni": 5, "port": 4790, "cidr": "10.97.0.0/24", "groups": ["239.10.2.1:31001"],
             "wireguard": {"cidr": "10.96.0.0/24", "port": 4789},
             "hosts": [{"name": "a", "underlay": "192.168.40.30", "address": "10.97.0.1"},
                       {"name": "b", "underlay": "192.168.40.31", "address": "10.97.0.2"}]}),
         "overlays[1].wireguard.port", "UDP 4789 is also overlay md-dc's VXLAN port"),
    Case("overlay-wireguard-cidr-overlaps-a-vpc",
         lambda d: d["overlays"][0].update(wireguard={"cidr": "10.20.99.0/24"}),
         "overlays[0].wireguard.cidr", "overlaps regions.eu-west-2.vpc_cidr"),
    # Monitoring
    Case("alarm-email-not-an-address", lambda d: d["monitoring"].update(email=["ops-at-example.com"]),
         "monitoring.email[0]", "ops-at-example.com"),
    Case("alarm-endpoint-plain-http", lambda d: d["monitoring"].update(https=["http://hooks.example.com/x"]),
         "monitoring.https[0]", "http://hooks.example.com/x"),
    Case("probe-loss-alarm-at-100-percent", lambda d: d["monitoring"].update(alarms={"probe_loss_percent": 100}),
         "monitoring.alarms.probe_loss_percent", "(got 100)"),
    Case("alarm-minutes-zero", lambda d: d["monitoring"].update(alarms={"relay_down_minutes": 0}),
         "monitoring.alarms.relay_down_minutes", "(got 0)"),
    Case("kit-stack-name-over-128-characters",
         lambda d: (d.update(project=LONG), d["customers"][1].update(name="b" * 63)),
         "customers[1].name", "over CloudFormation's 128"),
]
# fmt: on


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c.id for c in BAD_INPUTS])
def test_one_mistake_one_problem_naming_the_field_and_the_value(
    example_data: dict[str, Any], case: Case
) -> None:
    case.mutate(example_data)
    with pytest.raises(ConfigError) as caught:
        parse_config(example_data)
    problems = caught.value.problems
    assert len(problems) == case.count, caught.value.messages
    assert problems[0].where == case.path, caught.value.messages
    assert case.value in problems[0].text(), problems[0].text()


def test_the_catalogue_is_large_and_distinct() -> None:
    assert len(BAD_INPUTS) >= 40
    assert len({c.id for c in BAD_INPUTS}) == len(BAD_INPUTS)


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c.id for c in BAD_INPUTS])
def test_validate_exits_2_with_one_line_per_problem(
    example_data: dict[str, Any], write_config: Callable[[dict[str, Any]], Path], case: Case
) -> None:
    case.mutate(example_data)
    config_path = write_config(example_data)
    console = Console(out=io.StringIO(), err=io.StringIO())
    status = main(["validate", str(config_path)], console)
    err = console.err.getvalue()
    assert status == ExitStatus.BAD_INPUT == 2
    assert console.out.getvalue() == ""
    assert "Traceback" not in err
    lines = err.splitlines()
    if case.count > 1:
        assert lines.pop(0) == f"mcastkit: error: {config_path}: {case.count} problems"
    else:
        lines[0] = lines[0].removeprefix("mcastkit: error: ")
    assert len(lines) == case.count, err
    # FILE:LINE: PATH: why (got value); fix
    assert lines[0].startswith(f"{config_path}:"), lines[0]
    assert f": {case.path}: " in lines[0] and case.value in lines[0], lines[0]


def test_a_line_number_points_at_the_field(example_data: dict[str, Any], tmp_path: Path) -> None:
    text = (ROOT / "config" / "example.yaml").read_text(encoding="utf-8")
    config_path = tmp_path / "config.yaml"
    config_path.write_text(text.replace("ttl: 8", "ttl: 0", 1), encoding="utf-8")
    wrong_line = 1 + text.splitlines().index("      ttl: 8")
    with pytest.raises(ConfigError) as caught:
        from mcastkit.config import load_config

        load_config(config_path)
    assert (
        caught.value.render()
        == f"{config_path}:{wrong_line}: regions.eu-west-2.relay.ttl: must be at least 1 (got 0)"
    )


def test_several_problems_are_counted_then_listed(example_data: dict[str, Any]) -> None:
    _london(example_data)["relay"]["port"] = 80
    example_data["customers"][0]["name"] = "Alpha"
    with pytest.raises(ConfigError) as caught:
        parse_config(example_data, "estate.yaml")
    lines = caught.value.render().splitlines()
    assert lines[0] == "estate.yaml: 2 problems"
    assert [line.split(": ")[1] for line in lines[1:]] == [
        "regions.eu-west-2.relay.port",
        "customers[0].name",
    ]


def test_example_is_valid(example_data: dict[str, Any]) -> None:
    config = parse_config(example_data)
    assert list(config.regions) == ["eu-west-2", "ap-northeast-1"]
    assert [c.name for c in config.customers_of("eu-west-2", "market-data")] == [
        "alpha-trading",
        "beta-capital",
    ]


def test_values_are_parsed_once_into_types(example_data: dict[str, Any]) -> None:
    import ipaddress

    from mcastkit.net.addresses import Endpoint, GroupPort

    _london(example_data)["relay"]["connect"] = ["192.168.40.10:7400"]
    config = parse_config(example_data)
    london = config.regions["eu-west-2"]
    assert london.vpc_cidr == ipaddress.IPv4Network("10.20.0.0/16")
    assert london.domains[0].groups[0].group_port == GroupPort("239.10.1.1", 30001)
    assert london.relay is not None and london.relay.connect == [Endpoint("192.168.40.10", 7400)]
    # ...and written back as the strings they were read from.
    dumped = config.model_dump(mode="json")
    assert dumped["regions"]["eu-west-2"]["relay"]["connect"] == ["192.168.40.10:7400"]
    assert parse_config(dumped) == config


def test_validate_accepts_the_example() -> None:
    console = Console(out=io.StringIO(), err=io.StringIO())
    assert main(["validate", str(ROOT / "config" / "example.yaml")], console) == ExitStatus.OK
    assert "valid" in console.out.getvalue()


def test_app_exits_2_on_a_bad_config(
    example_data: dict[str, Any], write_config: Callable[[dict[str, Any]], Path], tmp_path: Path
) -> None:
    """`cdk synth -c config=...` runs app.py; a bad config stops it with the message, not a traceback."""
    _london(example_data)["capacity"]["instance_type"] = "t2.micro"
    config_path = write_config(example_data)
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": f'{{"config": "{config_path}"}}',
        "CDK_OUTDIR": str(tmp_path / "cdk.out"),
    }
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == ExitStatus.BAD_INPUT
    assert "regions.eu-west-2.capacity.instance_type: t2.micro is not a Nitro instance type" in result.stderr
    assert "Traceback" not in result.stderr
