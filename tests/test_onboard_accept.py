"""`mcastkit onboard accept`: entitled requests accepted, others rejected, dry run inert, idempotent."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml
from moto import mock_aws
from onboard_support import (
    ALPHA,
    BETA,
    DOMAIN_IDS,
    REGION,
    STRANGER,
    MulticastStub,
    Provider,
    association,
    credentials,  # noqa: F401
    moto_extras,  # noqa: F401
    provider_aws,
    provider_config,
    stub_fixture,  # noqa: F401
)

from mcastkit import cli
from mcastkit.commands import onboard as onboard_command
from mcastkit.exit import ExitStatus
from mcastkit.onboard.accept import Action, accept, report

pytestmark = pytest.mark.usefixtures("credentials", "moto_extras")

ATTACH = "tgw-attach-0ccccccccccccccc1"


@mock_aws
def test_accepts_entitled_and_rejects_the_rest(stub: MulticastStub) -> None:
    provider = Provider()
    alpha = provider.attach(ALPHA)
    stranger = provider.attach(STRANGER)
    config = provider_config(tgw_id=provider.tgw_id)
    stub.describe_domains(provider.tgw_id)
    stub.associations(
        "market-data",
        [
            association(ALPHA, "subnet-0aaaaaaaaaaaaaaa1", "pendingAcceptance", ATTACH),
            association(ALPHA, "subnet-0aaaaaaaaaaaaaaa2", "pendingAcceptance", ATTACH),
            association(
                STRANGER, "subnet-0fffffffffffffff1", "pendingAcceptance", "tgw-attach-0fffffffffffffff1"
            ),
        ],
    )
    # beta is entitled to market-data only: its reference-data association is rejected.
    stub.decided("accept", "market-data", ATTACH, ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"])
    stub.decided("reject", "market-data", "tgw-attach-0fffffffffffffff1", ["subnet-0fffffffffffffff1"])
    stub.associations(
        "reference-data",
        [association(BETA, "subnet-0bbbbbbbbbbbbbbb1", "pendingAcceptance", "tgw-attach-0bbbbbbbbbbbbbbb1")],
    )
    stub.decided("reject", "reference-data", "tgw-attach-0bbbbbbbbbbbbbbb1", ["subnet-0bbbbbbbbbbbbbbb1"])

    found, decisions = accept(provider_aws(stub), config, REGION, dry_run=False)

    assert provider.state(alpha) == "available"
    assert provider.state(stranger) == "rejected"
    assert provider.state(provider.own_attachment) == "available"
    by_resource = {(d.kind, d.resource.split(" ")[0]): d for d in decisions}
    assert by_resource[("attachment", alpha)].action is Action.ACCEPT
    assert by_resource[("attachment", alpha)].customer == "alpha-trading"
    assert by_resource[("attachment", stranger)].action is Action.REJECT
    assert by_resource[("association", "subnet-0fffffffffffffff1")].action is Action.REJECT
    beta = by_resource[("association", "subnet-0bbbbbbbbbbbbbbb1")]
    assert beta.action is Action.REJECT and "not entitled to reference-data" in beta.reason
    assert all(d.applied for d in decisions)
    lines, status = report(found, decisions, dry_run=False)
    assert status is ExitStatus.OK
    text = "\n".join(lines)
    assert f"accepted  attachment {alpha} from {ALPHA} (alpha-trading)" in text
    assert f"rejected  attachment {stranger} from {STRANGER}" in text
    assert "2 accepted, 3 rejected" in text


@mock_aws
def test_dry_run_changes_nothing(stub: MulticastStub) -> None:
    provider = Provider()
    alpha = provider.attach(ALPHA)
    stranger = provider.attach(STRANGER)
    config = provider_config(tgw_id=provider.tgw_id)
    stub.describe_domains(provider.tgw_id)
    stub.associations("market-data", [association(STRANGER, "subnet-0fffffffffffffff1", "pendingAcceptance")])
    stub.associations("reference-data", [])
    # No accept/reject call is stubbed: the Stubber would fail on any.
    found, decisions = accept(provider_aws(stub), config, REGION, dry_run=True)

    assert provider.state(alpha) == "pendingAcceptance"
    assert provider.state(stranger) == "pendingAcceptance"
    assert [d.action for d in decisions] == [Action.ACCEPT, Action.REJECT, Action.REJECT]
    assert not any(d.applied for d in decisions)
    lines, _ = report(found, decisions, dry_run=True)
    assert "dry run: nothing is changed" in lines
    assert any(line.strip().startswith("would accept  attachment " + alpha) for line in lines)


@mock_aws
def test_second_run_finds_nothing_pending() -> None:
    provider = Provider()
    alpha = provider.attach(ALPHA)
    config = provider_config(tgw_id=provider.tgw_id)
    for run in range(2):
        with MulticastStub() as stub:
            stub.describe_domains(provider.tgw_id)
            state = "pendingAcceptance" if run == 0 else "associated"
            stub.associations("market-data", [association(ALPHA, "subnet-0aaaaaaaaaaaaaaa1", state, alpha)])
            if run == 0:
                stub.decided("accept", "market-data", alpha, ["subnet-0aaaaaaaaaaaaaaa1"])
            stub.associations("reference-data", [])
            found, decisions = accept(provider_aws(stub), config, REGION, dry_run=False)
            stub.stubber.assert_no_pending_responses()
    assert provider.state(alpha) == "available"
    assert {d.action for d in decisions} == {Action.ALLOWED}
    lines, status = report(found, decisions, dry_run=False)
    assert status is ExitStatus.OK
    assert "nothing is waiting for acceptance" in lines


@mock_aws
def test_auto_accept_checks_instead_and_flags_intruders(stub: MulticastStub) -> None:
    provider = Provider(auto_accept_attachments=True)
    provider.attach(ALPHA, state="available")
    stranger = provider.attach(STRANGER, state="available")
    config = provider_config(tgw_id=provider.tgw_id)
    stub.describe_domains(provider.tgw_id, auto_accept=True)
    stub.associations(
        "market-data", [association(STRANGER, "subnet-0fffffffffffffff1", "associated", stranger)]
    )
    stub.associations("reference-data", [])

    found, decisions = accept(provider_aws(stub), config, REGION, dry_run=False)

    assert found.auto_accept_attachments
    intruders = [d for d in decisions if d.action is Action.INTRUDER]
    assert {d.resource for d in intruders} == {stranger, "subnet-0fffffffffffffff1"}
    lines, status = report(found, decisions, dry_run=False)
    assert status is ExitStatus.FAILURE
    assert any(line.startswith(f"auto-accept is on for {provider.tgw_id}") for line in lines)
    assert any("auto-accept is on for domain market-data" in line for line in lines)


@mock_aws
def test_ou_customer_left_pending_when_organizations_refuses(stub: MulticastStub) -> None:
    """ap-northeast-1 has an OU customer; without Organizations access its members are unverified."""
    provider = Provider()
    unknown = provider.attach(STRANGER)
    base = provider_config(tgw_id=provider.tgw_id)
    # Move the OU customer to eu-west-2 so the moto region is used.
    data = base.model_dump(mode="json")
    data["customers"][2]["entitlements"] = [{"region": REGION, "domains": ["market-data"]}]
    config = type(base).model_validate(data)
    stub.describe_domains(provider.tgw_id)
    stub.associations("market-data", [])
    stub.associations("reference-data", [])

    found, decisions = accept(provider_aws(stub), config, REGION, dry_run=False)

    assert provider.state(unknown) == "pendingAcceptance"
    (decision,) = decisions
    assert decision.action is Action.LEAVE
    assert "cannot list the accounts of arn:aws:organizations::" in decision.reason
    assert report(found, decisions, dry_run=False)[1] is ExitStatus.FAILURE


def test_domain_ids_in_fixture_match_config_pattern() -> None:
    config = provider_config(tgw_id="tgw-0123456789abcdef0")
    shared = config.regions[REGION].shared
    assert shared is not None and shared.domain_ids == DOMAIN_IDS


@mock_aws
def test_cli_dry_run_json(stub: MulticastStub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    provider = Provider()
    alpha = provider.attach(ALPHA)
    stub.describe_domains(provider.tgw_id)
    stub.associations("market-data", [])
    stub.associations("reference-data", [])
    path = tmp_path / "mcastkit.yaml"
    path.write_text(
        yaml.safe_dump(provider_config(tgw_id=provider.tgw_id).model_dump(mode="json")), encoding="utf-8"
    )
    monkeypatch.setattr(onboard_command, "make_aws", lambda region, profile: provider_aws(stub))
    out, err = io.StringIO(), io.StringIO()

    code = cli.main(
        ["onboard", "accept", "--config", str(path), "--region", REGION, "--dry-run", "--json"],
        cli.Console(out=out, err=err),
    )

    assert code == ExitStatus.OK, err.getvalue()
    result = json.loads(out.getvalue())
    assert result["dry_run"] is True and result["transit_gateway_id"] == provider.tgw_id
    (decision,) = result["decisions"]
    assert (decision["resource"], decision["action"], decision["applied"]) == (alpha, "accept", False)
    assert provider.state(alpha) == "pendingAcceptance"
