"""Every bad input named in the config contract: message names the field path and the value,
and `mcastkit validate` exits 2 without a traceback."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable
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


def _group(address: str | None = None, port: int | None = None, name: str | None = None) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        group = _london(data)["domains"][0]["groups"][1]
        group.update({k: v for k, v in {"address": address, "port": port, "name": name}.items() if v})

    return mutate


#: (case id, mutation, field path the message must name, bad value it must name)
BAD_INPUTS: list[tuple[str, Mutation, str, str]] = [
    (
        "group-outside-multicast-range",
        _group(address="10.1.1.1"),
        "regions.eu-west-2.domains[0].groups[1].address",
        "10.1.1.1",
    ),
    (
        "group-in-reserved-block",
        _group(address="224.0.0.251"),
        "regions.eu-west-2.domains[0].groups[1].address",
        "224.0.0.251",
    ),
    (
        "duplicate-group-address-and-port",
        _group(address="239.10.1.1", port=30001),
        "regions.eu-west-2.domains[0].groups[1]",
        "239.10.1.1:30001",
    ),
    (
        "overlapping-subnet-cidrs",
        lambda d: _london(d)["subnets"][1].update(cidr="10.20.0.0/23"),
        "regions.eu-west-2.subnets[1].cidr",
        "10.20.0.0/23",
    ),
    (
        "two-multicast-subnets-in-one-zone",
        lambda d: _london(d)["subnets"][2].update(availability_zone="eu-west-2a"),
        "regions.eu-west-2.subnets[2].availability_zone",
        "eu-west-2a",
    ),
    (
        "overlapping-vpc-cidrs",
        lambda d: d["regions"]["ap-northeast-1"].update(vpc_cidr="10.20.0.0/16"),
        "regions.ap-northeast-1.vpc_cidr",
        "10.20.0.0/16",
    ),
    (
        "provider-account-not-12-digits",
        lambda d: d.update(provider_account="12345678901"),
        "provider_account",
        "12345678901",
    ),
    (
        "account-id-unquoted-in-yaml",
        lambda d: d["customers"][1].update(principal=33333333333),
        "customers[1].principal",
        '"033333333333"',
    ),
    (
        "customer-account-not-12-digits",
        lambda d: d["customers"][1].update(principal="33333333333a"),
        "customers[1].principal",
        "33333333333a",
    ),
    (
        "probe-rate-beyond-a-proof-of-delivery",
        lambda d: _london(d)["probe"].update(rate=1_000_000),
        "regions.eu-west-2.probe.rate",
        "1000000",
    ),
    (
        "duplicate-customer-names",
        lambda d: d["customers"][2].update(name="alpha-trading"),
        "customers[2].name",
        "alpha-trading",
    ),
    (
        "duplicate-domain-names",
        lambda d: _london(d)["domains"][1].update(name="market-data"),
        "regions.eu-west-2.domains[1].name",
        "market-data",
    ),
    (
        "duplicate-group-names",
        _group(name="btc-book"),
        "regions.eu-west-2.domains[0].groups[1].name",
        "btc-book",
    ),
    (
        "igmpv2-domain-with-static-sources",
        lambda d: _london(d)["domains"][0].update(static_sources=["eni-0123456789abcdef0"]),
        "regions.eu-west-2.domains[0].static_sources",
        "eni-0123456789abcdef0",
    ),
    (
        "non-nitro-instance-type",
        lambda d: _london(d)["capacity"].update(instance_type="m4.large"),
        "regions.eu-west-2.capacity.instance_type",
        "m4.large",
    ),
    (
        "region-outside-allowlist",
        lambda d: d.update(allowed_regions=["ap-northeast-1"]),
        "regions.eu-west-2",
        "allowed_regions",
    ),
    (
        "customer-entitled-to-unknown-region",
        lambda d: d["customers"][0]["entitlements"].append(
            {"region": "us-east-1", "domains": ["market-data"]}
        ),
        "customers[0] (alpha-trading).entitlements[2].region",
        "us-east-1",
    ),
    (
        "customer-entitled-to-unknown-domain",
        lambda d: d["customers"][1]["entitlements"][0].update(domains=["options-data"]),
        "customers[1] (beta-capital).entitlements[0].domains",
        "options-data",
    ),
    (
        "more-groups-than-quota",
        lambda d: d.update(quotas={"groups_per_transit_gateway": 3}),
        "regions.eu-west-2.domains",
        "4 groups exceed the quota of 3",
    ),
    (
        "more-domains-than-quota",
        lambda d: d.update(quotas={"domains_per_transit_gateway": 1}),
        "regions.eu-west-2.domains",
        "2 domains exceed the quota of 1",
    ),
    (
        "more-customers-than-members-per-group",
        lambda d: d.update(quotas={"customers_per_domain": 1}),
        "regions.eu-west-2.domains.market-data",
        "2 customers exceed",
    ),
    (
        "more-security-group-rules-than-the-quota",
        lambda d: _london(d)["domains"][0]["groups"].extend(
            {"name": f"extra-{n}", "address": f"239.10.9.{n}", "port": 40000 + n} for n in range(1, 30)
        ),
        "regions.eu-west-2.domains",
        "68 outbound",
    ),
    (
        "names-that-differ-only-by-hyphens",
        lambda d: _london(d)["domains"][1].update(name="marketdata"),
        "regions.eu-west-2.domains",
        "'marketdata'",
    ),
    (
        "relay-on-a-static-sources-domain",
        lambda d: _london(d)["domains"][0].update(mode="static"),
        "regions.eu-west-2.relay.domain",
        "'market-data' is a static-sources domain",
    ),
    (
        "relay-port-is-the-metrics-port",
        lambda d: _london(d)["relay"].update(port=9400),
        "regions.eu-west-2.relay.port",
        "9400",
    ),
    (
        "more-network-acl-entries-than-the-quota",
        lambda d: _london(d)["relay"].update(datacenter_cidrs=[f"192.168.{n}.0/24" for n in range(0, 32, 2)]),
        "regions.eu-west-2.domains",
        "21 inbound",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "path", "value"), [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS]
)
def test_bad_input_names_field_and_value(
    example_data: dict[str, Any], mutate: Mutation, path: str, value: str
) -> None:
    mutate(example_data)
    with pytest.raises(ConfigError) as caught:
        parse_config(example_data)
    matching = [p for p in caught.value.problems if p.startswith(path) and value in p]
    assert matching, f"no problem names {path!r} and {value!r}: {caught.value.problems}"


@pytest.mark.parametrize(
    ("mutate", "path", "value"), [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS]
)
def test_validate_exits_2_with_the_message_and_no_traceback(
    example_data: dict[str, Any],
    write_config: Callable[[dict[str, Any]], Path],
    mutate: Mutation,
    path: str,
    value: str,
) -> None:
    mutate(example_data)
    config_path = write_config(example_data)
    console = Console(out=io.StringIO(), err=io.StringIO())
    status = main(["validate", str(config_path)], console)
    err = console.err.getvalue()
    assert status == ExitStatus.BAD_INPUT == 2
    assert path in err and value in err
    assert "Traceback" not in err + console.out.getvalue()
    assert console.out.getvalue() == ""


def test_example_is_valid(example_data: dict[str, Any]) -> None:
    config = parse_config(example_data)
    assert list(config.regions) == ["eu-west-2", "ap-northeast-1"]
    assert [c.name for c in config.customers_of("eu-west-2", "market-data")] == [
        "alpha-trading",
        "beta-capital",
    ]


def test_validate_accepts_the_example() -> None:
    console = Console(out=io.StringIO(), err=io.StringIO())
    assert main(["validate", str(ROOT / "config" / "example.yaml")], console) == ExitStatus.OK
    assert "valid" in console.out.getvalue()


def test_missing_file_and_bad_yaml_exit_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("project: [unclosed\n", encoding="utf-8")
    for path, expected in ((tmp_path / "absent.yaml", "cannot read"), (broken, "not valid YAML")):
        console = Console(out=io.StringIO(), err=io.StringIO())
        assert main(["validate", str(path)], console) == ExitStatus.BAD_INPUT
        assert expected in console.err.getvalue() and str(path) in console.err.getvalue()


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
