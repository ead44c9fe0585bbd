"""Failures are one line naming account, region and resource, with a non-zero exit, never a traceback."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError
from botocore.stub import Stubber
from moto import mock_aws
from moto.server import ThreadedMotoServer
from onboard_support import (
    EXAMPLE,
    MOTO_ACCOUNT,
    REGION,
    MulticastStub,
    Provider,
    association,
    credentials,  # noqa: F401
    moto_extras,  # noqa: F401
    provider_aws,
    provider_config,
)

from mcastkit import cli
from mcastkit.commands import onboard as onboard_command
from mcastkit.exit import ExitStatus
from mcastkit.onboard.accept import accept
from mcastkit.onboard.aws import CLIENT_CONFIG, Aws, AwsFailure


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(argv, cli.Console(out=out, err=err))
    return code, out.getvalue(), err.getvalue()


def _one_line_error(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mcastkit: error: ")
    return lines[0]


def test_no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)

    code, _, err = _run(["onboard", "accept", "--config", EXAMPLE, "--region", REGION, "--dry-run"])

    assert code == ExitStatus.ENVIRONMENT
    line = _one_line_error(err)
    assert f"account unknown, region {REGION}, caller identity: no AWS credentials found" in line


@pytest.mark.usefixtures("credentials")
@mock_aws
def test_wrong_account() -> None:
    code, _, err = _run(["onboard", "status", "--config", EXAMPLE, "--region", REGION])
    assert code == ExitStatus.ENVIRONMENT
    line = _one_line_error(err)
    assert f"account {MOTO_ACCOUNT}, region {REGION}" in line
    assert "the config's provider_account is 111111111111" in line


@pytest.mark.parametrize(
    ("code", "expected", "status"),
    [
        (
            "AccessDenied",
            "access denied to sts:GetCallerIdentity (AccessDenied: not allowed)",
            ExitStatus.ENVIRONMENT,
        ),
        ("ExpiredToken", "the credentials have expired", ExitStatus.ENVIRONMENT),
        ("Throttling", "still throttled after retries", ExitStatus.ENVIRONMENT),
    ],
)
def test_sts_errors(code: str, expected: str, status: ExitStatus) -> None:
    sts = boto3.client("sts", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(sts) as stubber:
        stubber.add_client_error(
            "get_caller_identity", service_error_code=code, service_message="not allowed"
        )
        with pytest.raises(AwsFailure) as raised:
            Aws(region=REGION, clients={"sts": sts}).identify()
    assert raised.value.status is status
    assert str(raised.value).startswith(f"account unknown, region {REGION}, caller identity: {expected}")


@pytest.mark.parametrize(
    ("code", "aws_message", "status", "expected"),
    [
        (
            "UnauthorizedOperation",
            "You are not authorized to perform this operation.",
            ExitStatus.ENVIRONMENT,
            "subnet-0aaaaaaaaaaaaaaa1: access denied to ec2:AcceptTransitGatewayMulticastDomainAssociations",
        ),
        (
            "IncorrectState",
            "The association is not pending acceptance.",
            ExitStatus.FAILURE,
            "cannot ec2:AcceptTransitGatewayMulticastDomainAssociations in its current state",
        ),
    ],
    ids=["access-denied", "wrong-state"],
)
@pytest.mark.usefixtures("credentials", "moto_extras")
@mock_aws
def test_a_refused_accept_names_the_account_region_and_resource(
    code: str, aws_message: str, status: ExitStatus, expected: str
) -> None:
    provider = Provider()
    with MulticastStub() as stub:
        stub.describe_domains(provider.tgw_id)
        stub.associations(
            "market-data", [association("222222222222", "subnet-0aaaaaaaaaaaaaaa1", "pendingAcceptance")]
        )
        stub.stubber.add_client_error(
            "accept_transit_gateway_multicast_domain_associations",
            service_error_code=code,
            service_message=aws_message,
        )
        with pytest.raises(AwsFailure) as raised:
            accept(provider_aws(stub), provider_config(tgw_id=provider.tgw_id), REGION, dry_run=False)
    message = str(raised.value)
    assert raised.value.status is status
    assert message.startswith(f"account {MOTO_ACCOUNT}, region {REGION}, tgw-mcast-domain-0aaaaaaaaaaaaaaa1 ")
    assert expected in message


def test_unknown_region_and_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = _run(["onboard", "accept", "--config", EXAMPLE, "--region", "us-east-1"])
    assert code == ExitStatus.BAD_INPUT
    assert "--region us-east-1: not a region of config/example.yaml" in _one_line_error(err)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    code, _, err = _run(["onboard", "status", "--config", EXAMPLE, "--region", REGION, "--profile", "nope"])
    assert code == ExitStatus.ENVIRONMENT
    assert "profile nope" in _one_line_error(err)


def test_clients_retry_in_standard_mode_and_honour_aws_endpoint_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    aws = onboard_command.make_aws(REGION, None)
    assert aws.ec2.meta.endpoint_url == "http://127.0.0.1:4566"
    assert aws.multicast is aws.ec2
    assert aws.ram.meta.endpoint_url == "http://127.0.0.1:4566"
    assert aws.ec2.meta.config.retries["mode"] == "standard"
    assert aws.ec2.meta.config.user_agent_extra == CLIENT_CONFIG.user_agent_extra


@pytest.mark.usefixtures("credentials")
def test_cli_against_moto_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end through AWS_ENDPOINT_URL: no client is injected, the CLI finds the server itself."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
        code, _, err = _run(["onboard", "accept", "--config", EXAMPLE, "--region", REGION, "--dry-run"])
    finally:
        server.stop()
    # moto_server's account is not the example's provider account: refused before any change.
    assert code == ExitStatus.ENVIRONMENT
    assert f"these credentials are for account {MOTO_ACCOUNT}" in _one_line_error(err)


def test_a_response_that_is_not_aws_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    aws = Aws(region=REGION, account=MOTO_ACCOUNT)
    with (
        pytest.raises(AwsFailure) as raised,
        aws.call("ec2:DescribeTransitGateways", "tgw-0123456789abcdef0"),
    ):
        raise ResponseParserError("Unable to parse response, invalid XML\nb'<html>'")
    assert str(raised.value) == (
        f"account {MOTO_ACCOUNT}, region {REGION}, tgw-0123456789abcdef0: ec2:DescribeTransitGateways "
        "got a response that is not AWS's from AWS_ENDPOINT_URL http://127.0.0.1:4566 (an emulator that "
        "does not implement it?)"
    )


def test_an_unimplemented_call_at_a_local_endpoint_names_it_without_the_page(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A local emulator answers a call it lacks with 404 and a web page: one line, no HTML."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    aws = Aws(region=REGION, account=MOTO_ACCOUNT)
    page = "<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body>Not Found</body></html>"
    with (
        pytest.raises(AwsFailure) as raised,
        aws.call("ec2:SearchTransitGatewayMulticastGroups", "tgw-mcast-domain-0aaaaaaaaaaaaaaa1"),
    ):
        raise ClientError(
            {"Error": {"Code": "404", "Message": page}, "ResponseMetadata": {"HTTPStatusCode": 404}},
            "SearchTransitGatewayMulticastGroups",
        )
    message = str(raised.value)
    assert message.endswith(
        "ec2:SearchTransitGatewayMulticastGroups is not answered by AWS_ENDPOINT_URL http://127.0.0.1:4566 "
        "(404: an HTML page, not an AWS error)"
    )
    assert "<" not in message and "\n" not in message
