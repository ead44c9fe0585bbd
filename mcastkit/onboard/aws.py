"""Sessions, clients and one-line failures for the onboarding commands.

Clients use botocore's ``standard`` retry mode (it retries throttling with backoff) and
never name an endpoint: boto3 reads ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>``
itself, so the commands can be pointed at a local endpoint such as ``moto_server``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config as BotocoreConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)
from botocore.parsers import ResponseParserError

from mcastkit import __version__
from mcastkit.errors import McastkitError
from mcastkit.exit import ExitStatus

#: Retries throttling and transient errors with exponential backoff (botocore "standard" mode).
CLIENT_CONFIG = BotocoreConfig(
    retries={"mode": "standard", "max_attempts": 8},
    user_agent_extra=f"mcastkit/{__version__}",
)

_CREDENTIAL_CODES = {
    "ExpiredToken": "the credentials have expired; refresh them (e.g. aws sso login)",
    "ExpiredTokenException": "the credentials have expired; refresh them (e.g. aws sso login)",
    "RequestExpired": "the request expired; check the clock and refresh the credentials",
    "InvalidClientTokenId": "the access key is not valid",
    "UnrecognizedClientException": "the access key is not valid",
    "AuthFailure": "AWS could not validate the credentials",
    "SignatureDoesNotMatch": "the secret key does not match the access key",
}
_DENIED_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Forbidden"}
_THROTTLE_CODES = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
_STATE_CODES = {"IncorrectState", "InvalidStateTransition", "InvalidState", "OperationNotPermittedException"}


class AwsFailure(McastkitError):
    """An AWS call that cannot go on; ``str()`` is the one line shown to the operator. Most are the
    environment's (credentials, access, reachability); a resource that is missing is a failure."""

    def __init__(self, message: str, status: ExitStatus = ExitStatus.ENVIRONMENT) -> None:
        super().__init__(message)
        self.status = status


def _endpoint() -> str:
    """Where the calls went: the AWS_ENDPOINT_URL boto3 reads, or AWS's own endpoints."""
    url = os.environ.get("AWS_ENDPOINT_URL")
    return f"AWS_ENDPOINT_URL {url}" if url else "the AWS endpoint"


def _plain(text: str) -> str:
    """An error message as text: a web page an endpoint sent instead of an AWS error is named, not
    pasted into the one line."""
    if re.search(r"<\s*(!doctype|html|head|body|h1|title)\b", text, re.IGNORECASE):
        return "an HTML page, not an AWS error"
    return text


def _where(account: str | None, region: str, resource: str) -> str:
    return f"account {account or 'unknown'}, region {region}, {resource}"


def describe_failure(
    err: Exception, *, account: str | None, region: str, resource: str, action: str
) -> AwsFailure:
    """Turn a botocore exception into an :class:`AwsFailure` naming account, region, resource."""
    where = _where(account, region, resource)
    if isinstance(err, (NoCredentialsError, PartialCredentialsError)):
        return AwsFailure(
            f"{where}: no AWS credentials found for {action} "
            "(set AWS_PROFILE, run aws sso login, or export AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
        )
    if isinstance(err, NoRegionError):
        return AwsFailure(f"{where}: no region for {action} (pass --region)")
    if isinstance(err, EndpointConnectionError):
        return AwsFailure(f"{where}: cannot reach the AWS endpoint for {action} ({err})")
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        text = _plain(" ".join(str(error.get("Message", "")).split()))
        # An HTTP status for a code: the endpoint answered, but not with an AWS error for this call.
        if code in {"404", "501", "NotImplemented", "InvalidAction"}:
            return AwsFailure(f"{where}: {action} is not answered by {_endpoint()} ({code}: {text})")
        if code in _CREDENTIAL_CODES:
            return AwsFailure(f"{where}: {_CREDENTIAL_CODES[code]} ({code} on {action})")
        if code in _DENIED_CODES:
            return AwsFailure(f"{where}: access denied to {action} ({code}: {text})")
        if code in _THROTTLE_CODES:
            return AwsFailure(f"{where}: still throttled after retries on {action} ({code}); try again later")
        if code in _STATE_CODES:
            return AwsFailure(
                f"{where}: cannot {action} in its current state ({code}: {text})", ExitStatus.FAILURE
            )
        if "NotFound" in code or code.startswith("InvalidTransitGateway") or "does not exist" in text:
            return AwsFailure(f"{where}: not found by {action} ({code}: {text})", ExitStatus.FAILURE)
        return AwsFailure(f"{where}: {action} failed ({code}: {text})", ExitStatus.FAILURE)
    if isinstance(err, ResponseParserError):
        return AwsFailure(
            f"{where}: {action} got a response that is not AWS's from {_endpoint()} "
            "(an emulator that does not implement it?)"
        )
    first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
    return AwsFailure(f"{where}: {action} failed ({first_line})")


@dataclass
class Aws:
    """Clients for one account and region.

    ``clients`` may supply ready-made clients by role; otherwise each comes from the
    session. The multicast-domain calls use the ``multicast`` role, an EC2 client that is
    the ``ec2`` client unless one is supplied separately.
    """

    region: str
    session: boto3.Session = field(default_factory=boto3.Session)
    clients: Mapping[str, Any] = field(default_factory=dict)
    account: str | None = None
    _made: dict[str, Any] = field(default_factory=dict, repr=False)

    def client(self, role: str) -> Any:
        if role in self.clients:
            return self.clients[role]
        if role == "multicast":
            return self.client("ec2")
        if role not in self._made:
            self._made[role] = self.session.client(  # type: ignore[call-overload]
                role, region_name=self.region, config=CLIENT_CONFIG
            )
        return self._made[role]

    @property
    def ec2(self) -> Any:
        return self.client("ec2")

    @property
    def multicast(self) -> Any:
        return self.client("multicast")

    @property
    def ram(self) -> Any:
        return self.client("ram")

    @contextmanager
    def call(self, action: str, resource: str) -> Iterator[None]:
        """Run AWS calls; any botocore failure becomes an :class:`AwsFailure` naming ``resource``."""
        try:
            yield
        except (BotoCoreError, ClientError, ResponseParserError) as err:
            raise describe_failure(
                err, account=self.account, region=self.region, resource=resource, action=action
            ) from None

    def pages(self, role: str, operation: str, key: str, resource: str, **kwargs: Any) -> list[Any]:
        """Every item under ``key`` across the pages of ``operation``."""
        items: list[Any] = []
        service = "ec2" if role == "multicast" else role
        with self.call(f"{service}:{''.join(p.title() for p in operation.split('_'))}", resource):
            for page in self.client(role).get_paginator(operation).paginate(**kwargs):
                items.extend(page.get(key, []))
        return items

    def identify(self, expected_account: str | None = None) -> str:
        """Record the caller's account (``sts get-caller-identity``); fail if it is not the expected one."""
        with self.call("sts:GetCallerIdentity", "caller identity"):
            self.account = str(self.client("sts").get_caller_identity()["Account"])
        if expected_account is not None and self.account != expected_account:
            raise AwsFailure(
                f"{_where(self.account, self.region, 'caller identity')}: these credentials are for account "
                f"{self.account}, but the config's provider_account is {expected_account}; "
                "use the provider account's credentials",
                ExitStatus.ENVIRONMENT,
            )
        return self.account


def region_of_arn(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if len(parts) > 5 and parts[3] else None
