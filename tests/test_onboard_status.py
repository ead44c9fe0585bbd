"""`mcastkit onboard status`: per-customer state, intruders flagged, non-zero exit when wrong."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from moto import mock_aws
from onboard_support import (
    ALPHA,
    BETA,
    REGION,
    STRANGER,
    MulticastStub,
    Provider,
    association,
    credentials,  # noqa: F401
    member,
    moto_extras,  # noqa: F401
    ou_customer_in_london,
    provider_aws,
    provider_config,
    stub_fixture,  # noqa: F401
)

from mcastkit import cli
from mcastkit.commands import onboard as onboard_command
from mcastkit.errors import EnvironmentFailure
from mcastkit.exit import ExitStatus
from mcastkit.onboard.status import collect_status, render

pytestmark = pytest.mark.usefixtures("credentials", "moto_extras")


def _healthy(
    provider: Provider,
    stub: MulticastStub,
    *,
    extra_associations: Sequence[dict[str, Any]] = (),
    extra_members: Sequence[dict[str, Any]] = (),
) -> str:
    alpha = provider.attach(ALPHA, state="available")
    provider.share("market-data", [ALPHA, BETA])
    provider.share("reference-data", [ALPHA])
    stub.describe_domains(provider.tgw_id)
    stub.associations(
        "market-data",
        [association(ALPHA, "subnet-0aaaaaaaaaaaaaaa1", "associated", alpha), *extra_associations],
    )
    stub.groups("market-data", [member(ALPHA, "239.10.1.3"), *extra_members])
    stub.associations("reference-data", [association(ALPHA, "subnet-0aaaaaaaaaaaaaaa2", "associated", alpha)])
    stub.groups("reference-data", [])
    return alpha


@mock_aws
def test_healthy_region_is_ok(stub: MulticastStub, monkeypatch: pytest.MonkeyPatch) -> None:
    provider = Provider()
    provider.attach(STRANGER, state="rejected")  # refused earlier: no access, not an intruder
    alpha = _healthy(provider, stub)
    status = collect_status(provider_aws(stub), provider_config(tgw_id=provider.tgw_id), REGION)

    assert status.ok, status.problems
    rows = {row.name: row for row in status.customers}
    assert set(rows) == {"alpha-trading", "beta-capital"}  # the OU customer is not in eu-west-2
    assert rows["alpha-trading"].attachments == [{"id": alpha, "account": ALPHA, "state": "available"}]
    assert rows["alpha-trading"].share == {"market-data": "ASSOCIATED", "reference-data": "ASSOCIATED"}
    assert rows["alpha-trading"].members == {"market-data": 1}
    assert rows["beta-capital"].attachments == []
    trades = next(g for g in status.groups if g.address == "239.10.1.3")
    assert (trades.name, trades.members, trades.quota) == ("trades", 1, 100)
    out = io.StringIO()
    render(status, out, color=False)
    text = out.getvalue()
    assert "alpha-trading" in text and "1/100" in text and "status: ok" in text
    # Piped: every id whole, on one line (a script greps them).
    assert f"{alpha} available" in text and ALPHA in text and "…" not in text
    # On a 100-column terminal long ids fold onto the next line: none is cut with an ellipsis.
    monkeypatch.setenv("COLUMNS", "100")
    narrow = io.StringIO()
    render(status, narrow, color=True)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", narrow.getvalue())
    assert "…" not in plain
    assert ALPHA in plain and alpha in plain


@mock_aws
def test_intruders_are_flagged_and_exit_non_zero(
    stub: MulticastStub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    provider = Provider()
    stranger = provider.attach(STRANGER, state="available")
    _healthy(
        provider,
        stub,
        extra_associations=[association(STRANGER, "subnet-0fffffffffffffff1", "associated", stranger)],
        extra_members=[member(STRANGER, "239.10.1.1", "eni-0fffffffffffffff0")],
    )
    config = provider_config(tgw_id=provider.tgw_id)
    monkeypatch.setattr(onboard_command, "make_aws", lambda region, profile: provider_aws(stub))
    out, err = io.StringIO(), io.StringIO()

    path = tmp_path / "mcastkit.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")), encoding="utf-8")

    code = cli.main(
        ["onboard", "status", "--config", str(path), "--region", REGION, "--json"],
        cli.Console(out=out, err=err),
    )

    assert code == ExitStatus.FAILURE
    report = json.loads(out.getvalue())
    assert report["ok"] is False
    flagged = {(i["kind"], i["account"]) for i in report["intruders"]}
    assert flagged == {("attachment", STRANGER), ("association", STRANGER), ("group member", STRANGER)}
    assert any(stranger in p for p in report["problems"])


@mock_aws
def test_share_principal_not_in_config_and_quota(stub: MulticastStub) -> None:
    provider = Provider()
    alpha = provider.attach(ALPHA, state="available")
    request = provider.attach(STRANGER)  # pendingAcceptance: not access yet, but needs a decision
    provider.share("market-data", [ALPHA, BETA, STRANGER])
    provider.share("reference-data", [ALPHA])
    stub.describe_domains(provider.tgw_id)
    stub.associations(
        "market-data", [association(ALPHA, "subnet-0aaaaaaaaaaaaaaa1", "pendingAcceptance", alpha)]
    )
    crowd = [member(ALPHA, "239.10.1.1", f"eni-0{i:016x}") for i in range(95)]
    stub.groups("market-data", crowd)
    stub.associations("reference-data", [])
    stub.groups("reference-data", [])

    status = collect_status(provider_aws(stub), provider_config(tgw_id=provider.tgw_id), REGION)

    assert not status.ok
    assert any(i["kind"] == "share principal" and i["account"] == STRANGER for i in status.intruders)
    assert any("still lists 999999999999" in p and "venue-md-eu-west-2-sharing" in p for p in status.problems)
    assert any("95 members, near the quota of 100" in p for p in status.problems)
    assert any("waits for acceptance: run mcastkit onboard accept" in p for p in status.problems)
    assert any(
        p.startswith(f"request: attachment {request} from account {STRANGER}") for p in status.problems
    )
    assert not any(i["resource"] == request for i in status.intruders)
    book = next(g for g in status.groups if g.address == "239.10.1.1")
    assert book.members == 95


@mock_aws
def test_a_source_the_provider_does_not_own_is_a_problem(stub: MulticastStub) -> None:
    provider = Provider()
    customer_source = {
        **member(ALPHA, "239.10.1.1", "eni-0aaaaaaaaaaaaaaa9"),
        "GroupMember": False,
        "GroupSource": True,
        "SourceType": "static",
    }
    customer_source.pop("MemberType")
    _healthy(provider, stub, extra_members=[customer_source])
    status = collect_status(provider_aws(stub), provider_config(tgw_id=provider.tgw_id), REGION)
    assert not status.ok
    expected = "source owned by account 222222222222 (eni-0aaaaaaaaaaaaaaa9)"
    assert any(expected in problem for problem in status.problems), status.problems


def test_json_failure_still_prints_a_document(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def no_credentials(region: str, profile: str | None) -> None:
        raise EnvironmentFailure("no AWS credentials for eu-west-2 (set AWS_PROFILE or run aws configure)")

    monkeypatch.setattr(onboard_command, "make_aws", no_credentials)
    path = tmp_path / "mcastkit.yaml"
    path.write_text(yaml.safe_dump(provider_config().model_dump(mode="json")), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(
        ["onboard", "status", "--config", str(path), "--region", REGION, "--json"],
        cli.Console(out=out, err=err),
    )
    assert code == ExitStatus.ENVIRONMENT
    assert json.loads(out.getvalue()) == {
        "region": REGION,
        "ok": False,
        "error": "no AWS credentials for eu-west-2 (set AWS_PROFILE or run aws configure)",
    }
    assert "no AWS credentials" in err.getvalue()


@mock_aws
def test_a_request_whose_owner_cannot_be_verified_is_left_to_a_person(stub: MulticastStub) -> None:
    """With an OU customer whose accounts cannot be listed, status does not tell the operator to let
    accept reject the request: accept leaves it too."""
    provider = Provider()
    request = provider.attach(STRANGER)  # pendingAcceptance
    config = ou_customer_in_london(provider.tgw_id)
    stub.describe_domains(provider.tgw_id)
    stub.associations("market-data", [])
    stub.groups("market-data", [])
    stub.associations("reference-data", [])
    stub.groups("reference-data", [])

    status = collect_status(provider_aws(stub), config, REGION)

    [problem] = [p for p in status.problems if request in p]
    assert "waits for acceptance" in problem
    assert "cannot verify its owner and leaves it" in problem
    assert "run mcastkit onboard accept to reject it" not in problem
