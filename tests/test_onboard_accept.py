"""`mcastkit onboard accept`: entitled requests accepted, others rejected, dry run inert, idempotent."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

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
    ou_customer_in_london,
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
@pytest.mark.parametrize(
    ("state", "action", "line", "summary"),
    [
        ("pendingAcceptance", Action.LEAVE, "left pending", "1 left pending (unverified), 0 intruder(s)"),
        # In use already: kept as it is and called so, not "left pending" (nothing is pending).
        ("available", Action.UNVERIFIED, "unverified", "0 left pending (unverified), 1 in use unverified"),
    ],
)
def test_an_account_that_may_be_under_the_ou_is_unverified(
    stub: MulticastStub, state: str, action: Action, line: str, summary: str
) -> None:
    """ap-northeast-1's OU customer, moved to eu-west-2: without Organizations access an unknown
    account may be one of its members, so accept neither accepts nor rejects it."""
    provider = Provider()
    attachment = provider.attach(STRANGER, state=state)
    stub.describe_domains(provider.tgw_id)
    stub.associations("market-data", [])
    stub.associations("reference-data", [])

    found, decisions = accept(
        provider_aws(stub), ou_customer_in_london(provider.tgw_id), REGION, dry_run=False
    )

    assert provider.state(attachment) == state
    (decision,) = decisions
    assert decision.action is action and decision.problem
    assert "cannot list the accounts of arn:aws:organizations::" in decision.reason
    assert decision.line(dry_run=False).strip().startswith(f"{line}  attachment {attachment}")
    lines, status = report(found, decisions, dry_run=False)
    assert summary in lines[-1]
    assert status is ExitStatus.FAILURE


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


def _decision(action: Action, resource: str = "tgw-attach-1", kind: str = "attachment") -> Any:
    from mcastkit.onboard.accept import Decision

    return Decision(kind, resource, ALPHA, "alpha-trading", None, action, "entitled", action is Action.ACCEPT)


class _Rounds:
    """accept() as AWS would answer it round after round, on a clock that advances per sleep."""

    def __init__(self, rounds: list[list[Any]]) -> None:
        self.rounds = rounds
        self.calls = 0
        self.now = 0.0
        self.slept: list[float] = []

    def accept(self, *args: Any, **kwargs: Any) -> tuple[Any, list[Any]]:
        answer = self.rounds[min(self.calls, len(self.rounds) - 1)]
        self.calls += 1
        return "provider", answer

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _watch(rounds: _Rounds, monkeypatch: pytest.MonkeyPatch, **limits: float) -> Any:
    from mcastkit.onboard import accept as accept_module

    monkeypatch.setattr(accept_module, "accept", rounds.accept)
    said: list[str] = []
    result = accept_module.watch(
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        REGION,
        timeout_s=limits.get("timeout", 600.0),
        interval_s=limits.get("interval", 10.0),
        settle_s=limits.get("settle", 30.0),
        progress=said.append,
        clock=lambda: rounds.now,
        sleep=rounds.sleep,
    )
    return result, said


def test_watch_accepts_the_attachment_then_the_associations_that_follow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rounds = _Rounds(
        [
            [_decision(Action.ACCEPT)],  # the customer's attachment
            [],  # it becomes available; the customer's stack creates its associations
            [_decision(Action.ACCEPT, "subnet-1 (tgw-attach-1)", "association")],
            [],
        ]
    )
    result, said = _watch(rounds, monkeypatch, settle=30.0, interval=10.0)
    assert result.stopped_by == "settled"
    assert [d.kind for d in result.decisions] == ["attachment", "association"]
    # It stopped once nothing had waited for --settle (30 s) after the last acceptance (at 20 s).
    assert rounds.now == 50.0 and rounds.calls == 6
    assert any("accepted  attachment tgw-attach-1" in line for line in said)
    assert any("watching 20 s more for associations" in line for line in said)


def test_watch_stops_at_the_timeout_while_a_request_stays_unverified(monkeypatch: pytest.MonkeyPatch) -> None:
    rounds = _Rounds([[_decision(Action.LEAVE)]])
    result, said = _watch(rounds, monkeypatch, timeout=35.0, interval=10.0)
    assert result.stopped_by == "timeout"
    assert rounds.now == 35.0  # the last sleep is cut to the timeout
    assert said[-1] == "round 4: 0 decided, 1 waiting (unverified); next check in 10 s"


def test_watch_waits_for_the_customer_until_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Started before the customer deploys, it does not stop on the first empty round."""
    rounds = _Rounds([[], [], [_decision(Action.ACCEPT)], []])
    result, said = _watch(rounds, monkeypatch, timeout=600.0, interval=10.0, settle=30.0)
    assert result.stopped_by == "settled" and rounds.now == 50.0
    assert said[0] == "round 1: 0 decided, waiting for the customer's attachment; next check in 10 s"
    nothing = _Rounds([[]])
    result, _ = _watch(nothing, monkeypatch, timeout=25.0, interval=10.0)
    assert (result.stopped_by, nothing.now) == ("nothing arrived", 25.0)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--watch", "--dry-run"], "--watch accepts as requests arrive; it cannot be a --dry-run"),
        (["--watch", "--timeout", "0"], "--timeout 0.0 / --interval 15.0 / --settle 300.0: must be positive"),
    ],
)
def test_watch_flags_that_cannot_work_exit_2(flags: list[str], message: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    config = Path(__file__).resolve().parent.parent / "config" / "example.yaml"
    status = cli.main(
        ["onboard", "accept", "--config", str(config), "--region", REGION, *flags], cli.Console(out, err)
    )
    assert status == ExitStatus.BAD_INPUT
    assert err.getvalue().startswith(f"mcastkit: error: {message}")
