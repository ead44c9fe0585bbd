"""``mcastkit onboard accept``: accept entitled customers' attachments and associations, reject the rest.

Runs in the provider account. Only requests waiting for the provider are acted on
(``pendingAcceptance``), so running it twice changes nothing the second time. When
auto-accept is on (TGW ``AutoAcceptSharedAttachments`` or a domain's
``AutoAcceptSharedAssociations``), AWS has already let everyone in: the command says so
and checks the owners instead, reporting anyone not entitled.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from mcastkit.config import Config
from mcastkit.exit import ExitStatus
from mcastkit.onboard.aws import Aws
from mcastkit.onboard.provider import Entitlements, ProviderRegion, Verdict, find_provider_region

PENDING = "pendingAcceptance"
#: States in which a foreign attachment or association gives its owner access.
IN_USE = {"available", "associated", "associating", "modifying", "pending"}


class Action(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    LEAVE = "leave pending"
    #: In use already (accepted earlier, or by auto-accept), owner not verifiable: kept as it is.
    UNVERIFIED = "unverified"
    ALLOWED = "allowed"
    INTRUDER = "intruder"


@dataclass(frozen=True)
class Decision:
    """One request (or one existing resource, when checking) and what was done about it."""

    kind: str
    resource: str
    account: str
    customer: str | None
    domain: str | None
    action: Action
    reason: str
    applied: bool

    @property
    def problem(self) -> bool:
        return self.action in {Action.INTRUDER, Action.LEAVE, Action.UNVERIFIED}

    def line(self, dry_run: bool) -> str:
        who = f"{self.account} ({self.customer})" if self.customer else self.account
        target = f"{self.kind} {self.resource}" + (f" in {self.domain}" if self.domain else "")
        verb = {
            Action.ACCEPT: "would accept" if dry_run else "accepted",
            Action.REJECT: "would reject" if dry_run else "rejected",
            Action.LEAVE: "left pending",
            Action.UNVERIFIED: "unverified",
            Action.ALLOWED: "ok",
            Action.INTRUDER: "INTRUDER",
        }[self.action]
        return f"{verb:>13}  {target} from {who}: {self.reason}"


def _decide(verdict: Verdict) -> Action:
    return {
        Verdict.ENTITLED: Action.ACCEPT,
        Verdict.NOT_ENTITLED: Action.REJECT,
        Verdict.UNVERIFIED: Action.LEAVE,
    }[verdict]


def review_attachments(
    aws: Aws, config: Config, provider: ProviderRegion, entitlements: Entitlements, *, dry_run: bool
) -> list[Decision]:
    attachments = provider.attachments(aws)
    decisions = []
    for attachment in attachments:
        owner = attachment.get("ResourceOwnerId", "")
        state = attachment.get("State", "")
        attachment_id = attachment["TransitGatewayAttachmentId"]
        if owner == config.provider_account or attachment.get("ResourceType") != "vpc":
            continue
        customer, verdict, reason = entitlements.verdict(owner)
        name = customer.name if customer else None
        if state == PENDING and not provider.auto_accept_attachments:
            action = _decide(verdict)
            applied = False
            if not dry_run and action is Action.ACCEPT:
                with aws.call("ec2:AcceptTransitGatewayVpcAttachment", attachment_id):
                    aws.ec2.accept_transit_gateway_vpc_attachment(TransitGatewayAttachmentId=attachment_id)
                applied = True
            elif not dry_run and action is Action.REJECT:
                with aws.call("ec2:RejectTransitGatewayVpcAttachment", attachment_id):
                    aws.ec2.reject_transit_gateway_vpc_attachment(TransitGatewayAttachmentId=attachment_id)
                applied = True
            decisions.append(
                Decision("attachment", attachment_id, owner, name, None, action, reason, applied)
            )
        elif state in IN_USE | {PENDING}:
            action = Action.ALLOWED if verdict is Verdict.ENTITLED else Action.INTRUDER
            if verdict is Verdict.UNVERIFIED:
                action = Action.UNVERIFIED
            if action is Action.INTRUDER:
                reason += (
                    "; remove it: aws ec2 delete-transit-gateway-vpc-attachment "
                    f"--transit-gateway-attachment-id {attachment_id} --region {provider.region}"
                )
            decisions.append(
                Decision("attachment", attachment_id, owner, name, None, action, f"{state}; {reason}", False)
            )
    return decisions


def review_associations(
    aws: Aws, provider: ProviderRegion, entitlements: Entitlements, config: Config, *, dry_run: bool
) -> list[Decision]:
    decisions = []
    for domain in provider.domains.values():
        associations = provider.associations(aws, domain)
        pending: dict[tuple[str, str], list[str]] = defaultdict(list)
        for association in associations:
            owner = association.get("ResourceOwnerId", "")
            subnet = association.get("Subnet", {})
            state = subnet.get("State", "")
            if owner == config.provider_account:
                continue
            if state == PENDING and not domain.auto_accept:
                pending[(association["TransitGatewayAttachmentId"], owner)].append(subnet["SubnetId"])
            elif state in IN_USE | {PENDING}:
                customer, verdict, reason = entitlements.verdict(owner, domain.name)
                action = {Verdict.ENTITLED: Action.ALLOWED, Verdict.UNVERIFIED: Action.UNVERIFIED}.get(
                    verdict, Action.INTRUDER
                )
                decisions.append(
                    Decision(
                        "association",
                        subnet.get("SubnetId", "?"),
                        owner,
                        customer.name if customer else None,
                        domain.name,
                        action,
                        f"{state}; {reason}",
                        False,
                    )
                )
        for (attachment_id, owner), subnets in sorted(pending.items()):
            customer, verdict, reason = entitlements.verdict(owner, domain.name)
            action = _decide(verdict)
            applied = False
            resource = f"{domain.domain_id} {attachment_id} {','.join(subnets)}"
            call = {
                Action.ACCEPT: "accept_transit_gateway_multicast_domain_associations",
                Action.REJECT: "reject_transit_gateway_multicast_domain_associations",
            }.get(action)
            if call and not dry_run:
                with aws.call(f"ec2:{''.join(p.title() for p in call.split('_'))}", resource):
                    getattr(aws.multicast, call)(
                        TransitGatewayMulticastDomainId=domain.domain_id,
                        TransitGatewayAttachmentId=attachment_id,
                        SubnetIds=subnets,
                    )
                applied = True
            decisions.append(
                Decision(
                    "association",
                    f"{','.join(subnets)} ({attachment_id})",
                    owner,
                    customer.name if customer else None,
                    domain.name,
                    action,
                    reason,
                    applied,
                )
            )
    return decisions


def accept(aws: Aws, config: Config, region: str, *, dry_run: bool) -> tuple[ProviderRegion, list[Decision]]:
    """Review every foreign attachment and association on the provider's TGW in ``region``."""
    aws.identify(config.provider_account)
    provider = find_provider_region(aws, config, region)
    entitlements = Entitlements(config, region, aws)
    decisions = review_attachments(aws, config, provider, entitlements, dry_run=dry_run)
    decisions += review_associations(aws, provider, entitlements, config, dry_run=dry_run)
    return provider, decisions


def report(
    provider: ProviderRegion, decisions: list[Decision], *, dry_run: bool, as_json: bool = False
) -> tuple[list[str] | dict[str, Any], ExitStatus]:
    status = ExitStatus.FAILURE if any(d.problem for d in decisions) else ExitStatus.OK
    if as_json:
        return {
            "region": provider.region,
            "transit_gateway_id": provider.transit_gateway_id,
            "dry_run": dry_run,
            "decisions": [asdict(d) | {"action": str(d.action)} for d in decisions],
            "ok": status is ExitStatus.OK,
        }, status
    lines = [f"{provider.region}: transit gateway {provider.transit_gateway_id} (ids from {provider.source})"]
    if provider.auto_accept_attachments:
        lines.append(
            f"auto-accept is on for {provider.transit_gateway_id} attachments: AWS accepts every shared "
            "attachment, so this checks their owners instead"
        )
    for domain in provider.domains.values():
        if domain.auto_accept:
            lines.append(
                f"auto-accept is on for domain {domain.name} ({domain.domain_id}): AWS accepts every shared "
                "association, so this checks their owners instead"
            )
    if dry_run:
        lines.append("dry run: nothing is changed")
    lines += [d.line(dry_run) for d in decisions]
    acted = [d for d in decisions if d.action in {Action.ACCEPT, Action.REJECT}]
    if not acted:
        lines.append("nothing is waiting for acceptance")
    counts = {a: sum(1 for d in decisions if d.action is a) for a in Action}
    in_use = f", {counts[Action.UNVERIFIED]} in use unverified" if counts[Action.UNVERIFIED] else ""
    lines.append(
        f"{counts[Action.ACCEPT]} to accept, {counts[Action.REJECT]} to reject, "
        f"{counts[Action.LEAVE]} left pending (unverified){in_use}, {counts[Action.INTRUDER]} intruder(s)"
        if dry_run
        else f"{counts[Action.ACCEPT]} accepted, {counts[Action.REJECT]} rejected, "
        f"{counts[Action.LEAVE]} left pending (unverified){in_use}, {counts[Action.INTRUDER]} intruder(s)"
    )
    return lines, status


@dataclass(frozen=True)
class WatchResult:
    """What ``accept --watch`` did over all its rounds, and why it stopped."""

    provider: ProviderRegion
    decisions: list[Decision]
    rounds: int
    #: "settled" (accepted, then nothing waited for the settle time), "timeout" (requests still
    #: unverified), or "nothing arrived" (no request before the timeout).
    stopped_by: str


def _waiting(decisions: list[Decision]) -> int:
    """Requests still waiting for the provider after a round (unverified ones, left pending)."""
    return sum(1 for d in decisions if d.action is Action.LEAVE)


def watch(
    aws: Aws,
    config: Config,
    region: str,
    *,
    timeout_s: float,
    interval_s: float,
    settle_s: float,
    progress: Callable[[str], None],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> WatchResult:
    """Accept entitled requests round after round, from before the customer deploys until its
    requests are in, or ``timeout_s``.

    A customer stack asks twice: its attachment first, then, once the provider has accepted it and
    it is ``available``, its domain associations. The watch keeps polling until it has accepted
    something; after that it goes on until nothing has waited for ``settle_s``, to catch the
    associations that follow. Each CloudFormation wait on the customer's side gives up after about
    20 minutes (the resource handlers' default stabilization, inferred from their source), so start
    the watch before the customer deploys.
    """
    start = clock()
    last_acceptance: float | None = None
    decided: dict[tuple[str, str], Decision] = {}
    rounds = 0
    while True:
        rounds += 1
        provider, decisions = accept(aws, config, region, dry_run=False)
        now = clock()
        acted = [d for d in decisions if d.action in {Action.ACCEPT, Action.REJECT}]
        if any(d.action is Action.ACCEPT for d in acted):
            last_acceptance = now
        for decision in decisions:
            decided[(decision.kind, decision.resource)] = decision
        for decision in acted:
            progress(decision.line(dry_run=False).strip())
        waiting = _waiting(decisions)
        if last_acceptance is not None and waiting == 0 and now - last_acceptance >= settle_s:
            return WatchResult(provider, list(decided.values()), rounds, "settled")
        if now - start >= timeout_s:
            stopped_by = (
                "timeout" if waiting else "settled" if last_acceptance is not None else "nothing arrived"
            )
            return WatchResult(provider, list(decided.values()), rounds, stopped_by)
        if waiting:
            left = f"{waiting} waiting (unverified)"
        elif last_acceptance is None:
            left = "waiting for the customer's attachment"
        else:
            left = f"watching {settle_s - (now - last_acceptance):.0f} s more for associations"
        progress(f"round {rounds}: {len(acted)} decided, {left}; next check in {interval_s:.0f} s")
        sleep(min(interval_s, max(0.0, timeout_s - (now - start))))
