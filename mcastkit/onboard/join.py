"""``mcastkit onboard join``: the customer accepts the provider's RAM share and waits to see it.

Runs in the customer account. The region is the share ARN's. Accepting is idempotent: an
invitation already accepted (or none needed, inside the provider's organization) is
reported as done. The wait ends when RAM lists the shared TGW and domains and EC2 can
describe them, or at the timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mcastkit.exit import ExitStatus
from mcastkit.onboard.aws import Aws, AwsFailure

RAM_TGW = "ec2:TransitGateway"
RAM_DOMAIN = "ec2:TransitGatewayMulticastDomain"


@dataclass
class JoinResult:
    invitation: str
    transit_gateway_id: str | None = None
    domain_ids: list[str] = field(default_factory=list)
    waited_s: float = 0.0


def accept_invitation(aws: Aws, share_arn: str) -> str:
    """Accept the pending invitation for ``share_arn``; return what happened."""
    invitations = aws.pages(
        "ram",
        "get_resource_share_invitations",
        "resourceShareInvitations",
        share_arn,
        resourceShareArns=[share_arn],
    )
    mine = [i for i in invitations if i.get("receiverAccountId") in (None, aws.account)]
    statuses = {i.get("status") for i in mine}
    pending = [i for i in mine if i.get("status") == "PENDING"]
    if pending:
        for invitation in pending:
            arn = invitation["resourceShareInvitationArn"]
            with aws.call("ram:AcceptResourceShareInvitation", arn):
                aws.ram.accept_resource_share_invitation(resourceShareInvitationArn=arn)
        return "accepted"
    if "ACCEPTED" in statuses:
        return "already accepted"
    if statuses & {"REJECTED", "EXPIRED"}:
        state = sorted(statuses & {"REJECTED", "EXPIRED"})[0].lower()
        raise AwsFailure(
            f"account {aws.account}, region {aws.region}, {share_arn}: the invitation is {state}; "
            "ask the provider to share it again "
            "(remove and re-add the account, then deploy the sharing stack)",
            ExitStatus.FAILURE,
        )
    return "none (shared inside the organization, or not yet sent)"


def shared_resources(aws: Aws, share_arn: str) -> tuple[str | None, list[str]]:
    """The TGW id and domain ids the share makes visible to this account, if EC2 can describe them."""
    resources = aws.pages(
        "ram",
        "list_resources",
        "resources",
        share_arn,
        resourceOwner="OTHER-ACCOUNTS",
        resourceShareArns=[share_arn],
    )
    tgw_ids = [r["arn"].rsplit("/", 1)[-1] for r in resources if r.get("type") == RAM_TGW]
    domain_ids = sorted(r["arn"].rsplit("/", 1)[-1] for r in resources if r.get("type") == RAM_DOMAIN)
    if not tgw_ids or not domain_ids:
        return None, []
    with aws.call("ec2:DescribeTransitGateways", tgw_ids[0]):
        gateways = aws.ec2.describe_transit_gateways(TransitGatewayIds=tgw_ids[:1])["TransitGateways"]
    described = aws.pages(
        "multicast",
        "describe_transit_gateway_multicast_domains",
        "TransitGatewayMulticastDomains",
        ", ".join(domain_ids),
        TransitGatewayMulticastDomainIds=domain_ids,
    )
    if not gateways or len(described) < len(domain_ids):
        return None, []
    return tgw_ids[0], domain_ids


def join(
    aws: Aws,
    share_arn: str,
    *,
    timeout_s: float,
    interval_s: float,
    progress: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> JoinResult:
    aws.identify()
    owner = share_arn.split(":")[4] if share_arn.count(":") >= 5 else None
    if owner == aws.account:
        raise AwsFailure(
            f"account {aws.account}, region {aws.region}, {share_arn}: this account owns the share; "
            "run join with the customer account's credentials",
            ExitStatus.BAD_INPUT,
        )
    result = JoinResult(invitation=accept_invitation(aws, share_arn))
    progress(f"invitation: {result.invitation}")
    start = clock()
    while True:
        tgw_id, domain_ids = shared_resources(aws, share_arn)
        result.waited_s = clock() - start
        if tgw_id is not None:
            result.transit_gateway_id, result.domain_ids = tgw_id, domain_ids
            return result
        if result.waited_s >= timeout_s:
            raise AwsFailure(
                f"account {aws.account}, region {aws.region}, {share_arn}: the transit gateway and domains "
                f"are not visible after {timeout_s:.0f} s; check the invitation in the RAM console "
                "and that the provider shared the TGW and the domain",
                ExitStatus.ENVIRONMENT,
            )
        progress(
            f"waiting for the shared transit gateway and domains ({result.waited_s:.0f}/{timeout_s:.0f} s)"
        )
        sleep(interval_s)
