"""`mcastkit onboard kit`: the files a customer gets, and the customers/regions it refuses."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from onboard_support import EXAMPLE, REGION, provider_config

from mcastkit import cli
from mcastkit.exit import ExitStatus
from mcastkit.onboard import kit as kit_module
from mcastkit.onboard.kit import PLACEHOLDER, Kit, parameter_values, readme, write_kit

TGW = "tgw-0123456789abcdef0"
KIT = ["onboard", "kit", "--config", EXAMPLE, "--customer"]
SHARE = "arn:aws:ram:eu-west-2:123456789012:resource-share/0f3c1a52-6b7e-4d2a-9c1e-1234567890ab"
SERVICE = "com.amazonaws.vpce.eu-west-2.vpce-svc-0123456789abcdef0"


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(argv, cli.Console(out=out, err=err))
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("customer", "region", "message"),
    [
        ("nobody", REGION, "customer 'nobody' is not in the config (customers: alpha-trading, beta-capital"),
        ("alpha-trading", "us-east-1", "--region us-east-1: not a region of config/example.yaml"),
        (
            "beta-capital",
            "ap-northeast-1",
            "customer 'beta-capital' is not entitled to any domain in region 'ap-northeast-1' "
            "(entitled regions: eu-west-2)",
        ),
    ],
)
def test_refuses_unknown_customer_or_region(customer: str, region: str, message: str, tmp_path: Path) -> None:
    code, out, err = _run(
        [
            "onboard",
            "kit",
            "--config",
            EXAMPLE,
            "--customer",
            customer,
            "--region",
            region,
            "--out",
            str(tmp_path),
        ]
    )
    assert code == ExitStatus.BAD_INPUT
    assert message in err
    assert "Traceback" not in err and out == ""
    assert list(tmp_path.iterdir()) == []


def test_refuses_a_non_nitro_cluster(tmp_path: Path) -> None:
    code, _, err = _run(
        [
            *KIT,
            "beta-capital",
            "--region",
            REGION,
            "--out",
            str(tmp_path),
            "--cluster",
            "--instance-type",
            "m4.large",
        ]
    )
    assert code == ExitStatus.BAD_INPUT
    assert "m4.large is not a Nitro instance type" in err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--min-capacity", "3", "--max-capacity", "2"],
            "onboard kit: --min-capacity: min 3 is greater than max 2",
        ),
        (["--max-capacity", "0"], "onboard kit: --max-capacity: must be at least 1 (got 0)"),
    ],
)
def test_refuses_a_cluster_capacity_that_cannot_be(tmp_path: Path, flags: list[str], message: str) -> None:
    code, out, err = _run(
        [*KIT, "beta-capital", "--region", REGION, "--out", str(tmp_path), "--cluster", *flags]
    )
    assert (code, out) == (ExitStatus.BAD_INPUT, "")
    [line] = err.splitlines()
    assert line.startswith(f"mcastkit: error: {message}"), line
    assert "Traceback" not in err and list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def beta_kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    """beta-capital's kit in eu-west-2, with the provider's ids recorded: the one real synth here."""
    config = provider_config(
        tgw_id=TGW, share_arns={"market-data": SHARE}, endpoint_services={"md-seq": SERVICE}
    )
    return write_kit(config, "beta-capital", REGION, tmp_path_factory.mktemp("beta-kit"))


def test_cli_kit_without_recorded_ids_marks_placeholders(
    beta_kit: Kit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The template is beta's, already synthesized; this test is about what the CLI writes around it.
    template = json.loads(beta_kit.template.read_text())
    monkeypatch.setattr(kit_module, "synth_template", lambda *args, **kwargs: template)

    code, out, err = _run([*KIT, "beta-capital", "--region", REGION, "--out", str(tmp_path)])

    assert code == ExitStatus.OK, err
    assert (
        "provider ids not recorded in regions.eu-west-2.shared: TransitGatewayId, MarketDataDomainId" in out
    )
    assert "the customer fills in: VpcId, MarketDataSubnet1, VpcCidr" in out
    written = tmp_path / "venue-md-beta-capital-eu-west-2-receiver.template.json"
    assert json.loads(written.read_text()) == template
    values = {
        p["ParameterKey"]: p["ParameterValue"] for p in json.loads((tmp_path / "parameters.json").read_text())
    }
    assert values["TransitGatewayId"] == f"{PLACEHOLDER}provider-transit-gateway-id-not-yet-recorded"
    assert values["VpcId"] == f"{PLACEHOLDER}your-vpc-id"
    readme_text = (tmp_path / "README.md").read_text()
    assert "**The provider has not recorded its ids for eu-west-2 yet**" in readme_text
    assert "--share-arn REPLACE-share-arn-of-market-data-from-the-provider" in readme_text


def test_kit_with_recorded_ids(beta_kit: Kit) -> None:
    kit = beta_kit

    values = {p["ParameterKey"]: p["ParameterValue"] for p in json.loads(kit.parameters.read_text())}
    assert values["TransitGatewayId"] == TGW
    assert values["MarketDataDomainId"] == "tgw-mcast-domain-0aaaaaaaaaaaaaaa1"
    # beta is entitled to one domain: one receiver subnet by default (the same for any number of domains).
    # ... and the subnets of the interface endpoint of market-data's sequenced stream.
    assert sorted(k for k in values if "Subnet" in k) == ["MarketDataSubnet1", "MdSeqEndpointSubnets"]
    assert "ReferenceDataDomainId" not in values
    assert kit.unrecorded == []
    assert kit.placeholders == ["VpcId", "MarketDataSubnet1", "VpcCidr", "MdSeqEndpointSubnets"]
    assert values["MdSeqEndpointServiceName"] == SERVICE
    assert values["MdSeqEndpointSubnets"] == f"{PLACEHOLDER}your-md-seq-endpoint-subnets-ids"
    assert values["VpcCidr"] == f"{PLACEHOLDER}your-vpc-cidr"
    template = json.loads(kit.template.read_text())
    assert template["Parameters"]["TransitGatewayId"]["Default"] == TGW
    types = [r["Type"] for r in template["Resources"].values()]
    assert types.count("AWS::EC2::TransitGatewayMulticastDomainAssociation") == 1
    assert "AWS::ECS::Cluster" not in types
    readme = kit.readme.read_text()
    assert f"mcastkit onboard join --share-arn {SHARE}" in readme
    assert f"TransitGatewayId={TGW}" in readme
    assert "aws cloudformation deploy \\\n  --region eu-west-2" in readme
    assert "--stack-name venue-md-beta-capital-eu-west-2-receiver" in readme
    # Verify on the provider's probe group, never with a probe receiver on a feed.
    assert (
        "mcastkit probe recv --group 239.10.1.20:30020 --interface <receiver-ip> --count 0 "
        "--report-every 10 --timeout 30"
    ) in readme
    assert "--group 239.10.1.1:30001" not in readme.split("## 4.")[0]
    assert "The deployment waits for the provider, twice" in readme
    assert "mcastkit onboard accept --region eu-west-2 --watch" in readme
    assert "/etc/sysctl.d/90-igmpv2.conf" in readme
    assert "CAPABILITY_IAM" not in readme
    assert "not recorded" not in readme
    # The sequenced stream: where the endpoint may go, and how to receive with replay.
    assert "| md-seq | market-data | md-seq | 239.10.1.10 | 30010 | 17001 |" in readme
    assert "matched by AZ id" in readme
    assert (
        f"aws ec2 describe-vpc-endpoint-services --region eu-west-2 --service-names {SERVICE} "
        "--query 'ServiceDetails[0].AvailabilityZones'"
    ) in readme
    recv = "mcastkit stream recv --group 239.10.1.10:30010 --interface <receiver-ip>"
    assert f"{recv} --replay <output MdSeqReplay>" in readme
    assert f"MdSeqEndpointServiceName={SERVICE}" in readme
    assert template["Parameters"]["MdSeqEndpointServiceName"]["Default"] == SERVICE


def test_readme_for_an_ou_customer_with_a_cluster(tmp_path: Path) -> None:
    config = provider_config()
    customer = config.customer("venue-analytics")
    template = {
        "Parameters": {
            "VpcId": {"Type": "AWS::EC2::VPC::Id"},
            "MarketDataSubnet1": {"Type": "AWS::EC2::Subnet::Id"},
        },
        "Resources": {"InstanceRole": {"Type": "AWS::IAM::Role"}},
    }
    values = parameter_values(config, customer, "ap-northeast-1", template)
    kit = Kit(
        tmp_path, "stack", tmp_path / "t.json", tmp_path / "p.json", tmp_path / "README.md", list(values)
    )

    text = readme(config, customer, "ap-northeast-1", kit, values, template)

    assert "your accounts under the Organizations OU arn:aws:organizations::" in text
    assert "there is no invitation to accept" in text
    assert "  --capabilities CAPABILITY_IAM \\" in text
    assert "`ReceiverClusterName`" in text
    # Tokyo sends no probe: delivery is shown by watching each domain's first feed group.
    assert (
        "mcastkit probe recv --passive --group 239.10.1.1:30001 --interface <receiver-ip> --timeout 30"
    ) in text
    assert "mcastkit probe recv --passive --group 239.10.2.1:31001" in text


def test_readme_of_a_static_domain_says_how_to_register_members(tmp_path: Path) -> None:
    from mcastkit.config import parse_config

    data = provider_config().model_dump(mode="json")
    reference = data["regions"][REGION]["domains"][1]
    reference.update(mode="static", static_sources=["eni-0123456789abcdef0"])
    config = parse_config(data)
    customer = config.customer("alpha-trading")
    template = {"Parameters": {"VpcId": {"Type": "AWS::EC2::VPC::Id"}}, "Resources": {}}
    values = parameter_values(config, customer, REGION, template)
    kit = Kit(
        tmp_path, "stack", tmp_path / "t.json", tmp_path / "p.json", tmp_path / "README.md", list(values)
    )

    text = readme(config, customer, REGION, kit, values, template)

    assert "**reference-data is a static domain:**" in text
    assert "**market-data is a static domain:**" not in text
    assert (
        f"aws ec2 register-transit-gateway-multicast-group-members --region {REGION} "
        "--transit-gateway-multicast-domain-id <reference-data-domain-id> --group-ip-address 239.10.2.1 "
        "--network-interface-ids <eni-id>"
    ) in text


def test_config_checks_recorded_share_arns(write_config: Callable[[dict[str, Any]], Path]) -> None:
    data = provider_config(tgw_id=TGW).model_dump(mode="json")
    data["regions"][REGION]["shared"]["share_arns"] = {"market-data": "arn:aws:ram:eu-west-2:1:share"}
    code, _, err = _run(["validate", str(write_config(data))])
    assert code == ExitStatus.BAD_INPUT
    assert "market-data: 'arn:aws:ram:eu-west-2:1:share' is not a RAM resource share ARN" in err
    data["regions"][REGION]["shared"]["share_arns"] = {"no-such-domain": SHARE}
    code, _, err = _run(["validate", str(write_config(data))])
    assert code == ExitStatus.BAD_INPUT
    assert "shared.share_arns.no-such-domain: 'no-such-domain' is not a domain of this region" in err


def test_refuses_more_receiver_subnets_than_zones(tmp_path: Path) -> None:
    code, _, err = _run(
        [*KIT, "alpha-trading", "--region", REGION, "--out", str(tmp_path), "--subnets-per-domain", "4"]
    )
    assert code == ExitStatus.BAD_INPUT
    assert "--subnets-per-domain 4: 2 domain(s) x 4 subnet(s) must be 1 to 6" in err


def test_synth_failure_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("node: not found\n    at somewhere")

    monkeypatch.setattr(kit_module, "synth_template", broken)
    code, _, err = _run([*KIT, "beta-capital", "--region", REGION, "--out", str(tmp_path)])
    assert code == ExitStatus.ENVIRONMENT
    expected = "cannot synthesize the customer template: node: not found"
    assert err == f"mcastkit: error: {expected}\n"


def test_an_old_node_is_named_as_such(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """jsii on the machine's Node 20 (a venv activated, no pinned Node first on PATH): the kit
    command says which Node and what to do, before jsii starts (no banner, no traceback)."""
    old = tmp_path / "node"
    old.write_text("#!/bin/sh\necho v20.20.2\n")
    old.chmod(0o755)
    monkeypatch.setenv("JSII_NODE", str(old))
    code, _, err = _run([*KIT, "beta-capital", "--region", REGION, "--out", str(tmp_path / "kit")])
    assert code == ExitStatus.ENVIRONMENT
    assert err.startswith(
        f"mcastkit: error: {old} is Node 20: the CDK's runtime (jsii) needs Node 22 or 24; "
    )
    assert err.count("\n") == 1 and "!!" not in err
    assert not (tmp_path / "kit").exists(), "nothing written"
