"""Finding the provider's TGW and domains: config `shared` first, then the network stack's outputs."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws
from onboard_support import (
    DOMAIN_IDS,
    REGION,
    MulticastStub,
    Provider,
    credentials,  # noqa: F401
    provider_aws,
    provider_config,
    stub_fixture,  # noqa: F401
)

from mcastkit.exit import ExitStatus
from mcastkit.onboard.aws import AwsFailure
from mcastkit.onboard.provider import find_provider_region, ids_from_outputs

pytestmark = pytest.mark.usefixtures("credentials")


def _network_stack(outputs: dict[str, str]) -> None:
    template = {
        "Resources": {"Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.98.0.0/16"}}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName=f"venue-md-{REGION}-network", TemplateBody=json.dumps(template)
    )


@mock_aws
def test_ids_from_the_network_stack_outputs(stub: MulticastStub) -> None:
    provider = Provider()
    _network_stack(
        {
            "TransitGatewayId": provider.tgw_id,
            "TransitGatewayArn": f"arn:aws:ec2:{REGION}:123456789012:transit-gateway/{provider.tgw_id}",
            "MarketDataDomainId": DOMAIN_IDS["market-data"],
            "ReferenceDataDomainId": DOMAIN_IDS["reference-data"],
        }
    )
    stub.describe_domains(provider.tgw_id, auto_accept=True)
    aws = provider_aws(stub)
    aws.identify()

    found = find_provider_region(aws, provider_config(), REGION)

    assert found.transit_gateway_id == provider.tgw_id
    assert found.source == f"stack venue-md-{REGION}-network outputs"
    assert {n: d.domain_id for n, d in found.domains.items()} == DOMAIN_IDS
    assert found.domains["market-data"].auto_accept
    assert not found.auto_accept_attachments


@mock_aws
def test_missing_stack_is_one_line() -> None:
    aws = provider_aws(MulticastStub())
    aws.identify()
    with pytest.raises(AwsFailure) as raised:
        find_provider_region(aws, provider_config(), REGION)
    assert raised.value.status is ExitStatus.FAILURE
    message = str(raised.value)
    assert message.startswith(
        f"account 123456789012, region {REGION}, stack venue-md-{REGION}-network: not found by "
        "cloudformation:DescribeStacks (ValidationError: "
    )
    assert message.endswith(f"deploy the network stack or record the ids under regions.{REGION}.shared")


def test_outputs_need_exact_keys() -> None:
    config = provider_config()
    outputs = [
        {"OutputKey": "TransitGatewayId", "OutputValue": "tgw-0123456789abcdef0"},
        {"OutputKey": "MarketDataDomainArn", "OutputValue": "arn:aws:ec2:eu-west-2:1:x/tgw-mcast-domain-01"},
        {"OutputKey": "MarketDataDomainId", "OutputValue": DOMAIN_IDS["market-data"]},
    ]
    assert ids_from_outputs(config, REGION, outputs) == (
        "tgw-0123456789abcdef0",
        {"market-data": DOMAIN_IDS["market-data"]},
    )


def test_an_account_covered_by_its_own_entry_and_an_ou_gets_the_union() -> None:
    """alpha-trading (its own entry: market-data in Tokyo) is also in venue-analytics' OU
    (market-data and reference-data): RAM shares reference-data with it through the OU."""
    from mcastkit.config import load_config
    from mcastkit.onboard.aws import Aws
    from mcastkit.onboard.provider import Entitlements, Verdict

    config = load_config("config/example.yaml")
    entitlements = Entitlements(config, "ap-northeast-1", Aws(region="ap-northeast-1"))
    entitlements._ou_accounts["venue-analytics"] = {"222222222222"}

    customer, verdict, _ = entitlements.verdict("222222222222", "reference-data")
    assert (customer.name if customer else None, verdict) == ("venue-analytics", Verdict.ENTITLED)
    customer, verdict, _ = entitlements.verdict("222222222222", "market-data")
    assert (customer.name if customer else None, verdict) == ("alpha-trading", Verdict.ENTITLED)

    entitlements._ou_accounts["venue-analytics"] = set()
    _, verdict, reason = entitlements.verdict("222222222222", "reference-data")
    assert verdict is Verdict.NOT_ENTITLED
    assert reason == "alpha-trading is not entitled to reference-data in ap-northeast-1"
