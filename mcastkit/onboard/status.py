"""``mcastkit onboard status``: what each customer can see and use in a region, and who should not.

Runs in the provider account and only reads. Per customer: the RAM principal association
of each domain's share, the invitation state, the VPC attachment(s), each domain
association and the IGMP members seen. Per group: members against the per-group quota.
Accounts that hold an attachment, association or membership without being entitled are
intruders.

The provider cannot read a customer's invitation; it is inferred from the share's principal
association: ``external`` principals must accept an invitation (``ASSOCIATING`` means it is
still pending), principals inside the organization need none.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from mcastkit.config import Config, Customer
from mcastkit.onboard.aws import Aws
from mcastkit.onboard.provider import Entitlements, ProviderRegion, Verdict, find_provider_region

#: Static + IGMPv2 members per group (not adjustable).
MEMBERS_PER_GROUP = 100
WARN_FRACTION = 0.9
BAD_STATES = {"failed", "rejected", "failing", "rejecting"}
#: States in which an attachment or association gives its owner no access.
NO_ACCESS = BAD_STATES | {"deleted", "deleting", "disassociated", "disassociating"}


@dataclass
class CustomerStatus:
    name: str
    principal: str
    domains: list[str]
    accounts: list[str] = field(default_factory=list)
    share: dict[str, str] = field(default_factory=dict)
    invitation: dict[str, str] = field(default_factory=dict)
    attachments: list[dict[str, str]] = field(default_factory=list)
    associations: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    members: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass
class GroupStatus:
    domain: str
    name: str | None
    address: str
    members: int
    sources: int
    quota: int = MEMBERS_PER_GROUP


@dataclass
class RegionStatus:
    region: str
    transit_gateway_id: str
    source: str
    customers: list[CustomerStatus]
    groups: list[GroupStatus]
    intruders: list[dict[str, str]]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "transit_gateway_id": self.transit_gateway_id,
            "ids_from": self.source,
            "customers": [vars(c) for c in self.customers],
            "groups": [vars(g) for g in self.groups],
            "intruders": self.intruders,
            "problems": self.problems,
            "ok": self.ok,
        }


def _share_principals(aws: Aws, provider: ProviderRegion) -> dict[str, dict[str, dict[str, Any]]]:
    """domain name -> principal -> RAM principal association, for the shares holding each domain."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for domain in provider.domains.values():
        found[domain.name] = {}
        if not domain.arn:
            continue
        shares = aws.pages(
            "ram",
            "get_resource_share_associations",
            "resourceShareAssociations",
            f"shares of {domain.domain_id}",
            associationType="RESOURCE",
            resourceArn=domain.arn,
        )
        share_arns = sorted({s["resourceShareArn"] for s in shares if s.get("status") != "DISASSOCIATED"})
        if not share_arns:
            continue
        principals = aws.pages(
            "ram",
            "get_resource_share_associations",
            "resourceShareAssociations",
            f"principals of the shares of {domain.domain_id}",
            associationType="PRINCIPAL",
            resourceShareArns=share_arns,
        )
        for principal in principals:
            if principal.get("status") != "DISASSOCIATED":
                found[domain.name][principal["associatedEntity"]] = principal
    return found


def _invitation(association: dict[str, Any] | None) -> str:
    if association is None:
        return "none"
    if not association.get("external"):
        return "not needed"
    return {"ASSOCIATING": "pending", "ASSOCIATED": "accepted"}.get(
        str(association.get("status")), str(association.get("status", "?")).lower()
    )


def collect_status(aws: Aws, config: Config, region: str) -> RegionStatus:
    """Read everything the status table shows, in the provider account."""
    aws.identify(config.provider_account)
    provider = find_provider_region(aws, config, region)
    entitlements = Entitlements(config, region, aws)
    tgw = provider.transit_gateway_id
    problems: list[str] = []
    intruders: list[dict[str, str]] = []

    customers = {c.name: _customer_row(c, region) for c in entitlements.customers()}

    def owner(
        account: str, kind: str, resource: str, state: str, domain: str | None = None
    ) -> CustomerStatus | None:
        customer, verdict, reason = entitlements.verdict(account, domain)
        row = customers.get(customer.name) if customer else None
        if verdict is Verdict.ENTITLED:
            if row is not None and account not in row.accounts:
                row.accounts.append(account)
            return row
        if state in NO_ACCESS:
            return None
        if state == "pendingAcceptance":
            # accept rejects what is not entitled, and leaves what it cannot verify for a person.
            decide = (
                "mcastkit onboard accept cannot verify its owner and leaves it: check the account, then "
                "accept or reject it with the aws ec2 accept-/reject- call for it"
                if verdict is Verdict.UNVERIFIED
                else "run mcastkit onboard accept to reject it"
            )
            problems.append(
                f"request: {kind} {resource} from account {account} waits for acceptance ({reason}); {decide}"
            )
            return None
        label = "unverified" if verdict is Verdict.UNVERIFIED else "intruder"
        intruders.append(
            {
                "account": account,
                "kind": kind,
                "resource": resource,
                "state": state,
                "domain": domain or "",
                "why": label if verdict is Verdict.UNVERIFIED else reason,
            }
        )
        problems.append(f"{label}: {kind} {resource} ({state}) from account {account}: {reason}")
        return None

    principals = _share_principals(aws, provider)
    for domain_name, by_principal in principals.items():
        for principal, shared_with in by_principal.items():
            if not any(
                c.principal == principal and domain_name in c.domains_in(region) for c in config.customers
            ):
                intruders.append(
                    {
                        "account": principal,
                        "kind": "share principal",
                        "resource": shared_with.get("resourceShareArn", ""),
                        "state": str(shared_with.get("status", "")),
                        "domain": domain_name,
                        "why": "not in config",
                    }
                )
                problems.append(
                    f"share of {domain_name} still lists {principal}, which the config does not entitle; "
                    f"deploy {config.stack_name(region, 'sharing')} to revoke it"
                )
    row: CustomerStatus | None
    for row in customers.values():
        for domain_name in row.domains:
            association = principals.get(domain_name, {}).get(row.principal)
            row.share[domain_name] = str(association.get("status", "?")) if association else "missing"
            row.invitation[domain_name] = _invitation(association)
            if association is None:
                row.problems.append(
                    f"not a principal of the {domain_name} share; "
                    f"deploy {config.stack_name(region, 'sharing')}"
                )
            elif association.get("status") == "FAILED":
                row.problems.append(
                    f"RAM association for {domain_name} failed: {association.get('statusMessage', '')}"
                )

    attachments = provider.attachments(aws)
    for attachment in attachments:
        account = attachment.get("ResourceOwnerId", "")
        state = attachment.get("State", "")
        if account == config.provider_account or state in {"deleted", "deleting"}:
            continue
        attachment_id = attachment["TransitGatewayAttachmentId"]
        row = owner(account, "attachment", attachment_id, state)
        if row is not None:
            row.attachments.append({"id": attachment_id, "account": account, "state": state})
            if state == "pendingAcceptance":
                row.problems.append(
                    f"attachment {attachment_id} waits for acceptance: run mcastkit onboard accept"
                )
            elif state in BAD_STATES:
                row.problems.append(f"attachment {attachment_id} is {state}")

    groups: list[GroupStatus] = []
    for domain in provider.domains.values():
        associations = provider.associations(aws, domain)
        for association in associations:
            account = association.get("ResourceOwnerId", "")
            subnet = association.get("Subnet", {})
            state = subnet.get("State", "")
            if account == config.provider_account or state == "disassociated":
                continue
            row = owner(account, "association", subnet.get("SubnetId", "?"), state, domain.name)
            if row is not None:
                row.associations.setdefault(domain.name, []).append(
                    {"subnet": subnet.get("SubnetId", "?"), "account": account, "state": state}
                )
                if state == "pendingAcceptance":
                    row.problems.append(
                        f"association of {subnet.get('SubnetId')} with {domain.name} waits for acceptance: "
                        "run mcastkit onboard accept"
                    )
                elif state in BAD_STATES:
                    row.problems.append(
                        f"association of {subnet.get('SubnetId')} with {domain.name} is {state}"
                    )
        seen = aws.pages(
            "multicast",
            "search_transit_gateway_multicast_groups",
            "MulticastGroups",
            domain.domain_id,
            TransitGatewayMulticastDomainId=domain.domain_id,
        )
        members: dict[str, int] = defaultdict(int)
        sources: dict[str, int] = defaultdict(int)
        for entry in seen:
            address = entry.get("GroupIpAddress", "?")
            account = entry.get("ResourceOwnerId", "")
            if entry.get("GroupSource"):
                sources[address] += 1
                if account != config.provider_account:
                    # Only the provider originates the feed: a customer's source could inject
                    # datagrams that every other member of the group accepts.
                    problems.append(
                        f"group {address} in {domain.name} has a source owned by account {account} "
                        f"({entry.get('NetworkInterfaceId', '?')}): only the provider should send"
                    )
            if not entry.get("GroupMember"):
                continue
            members[address] += 1
            if account == config.provider_account:
                continue
            row = owner(
                account,
                "group member",
                f"{entry.get('NetworkInterfaceId', '?')} in {address}",
                "member",
                domain.name,
            )
            if row is not None:
                row.members[domain.name] = row.members.get(domain.name, 0) + 1
        names = {str(g.address): g.name for g in config.regions[region].domain(domain.name).groups}
        for address in sorted(set(names) | set(members) | set(sources)):
            group = GroupStatus(
                domain.name, names.get(address), address, members.get(address, 0), sources.get(address, 0)
            )
            groups.append(group)
            if group.members >= group.quota:
                problems.append(
                    f"group {address} in {domain.name} has {group.members} members: "
                    f"at the quota of {group.quota}"
                )
            elif group.members >= WARN_FRACTION * group.quota:
                problems.append(
                    f"group {address} in {domain.name} has {group.members} members, "
                    f"near the quota of {group.quota}"
                )
    for row in customers.values():
        problems += [f"{row.name}: {p}" for p in row.problems]
    return RegionStatus(region, tgw, provider.source, list(customers.values()), groups, intruders, problems)


def _customer_row(customer: Customer, region: str) -> CustomerStatus:
    row = CustomerStatus(customer.name, customer.principal, customer.domains_in(region))
    if customer.is_account:
        row.accounts.append(customer.principal)
    return row


def _principal(principal: str) -> str:
    """An account id whole; an OU by its id (the ARN would take the table's width)."""
    return principal if len(principal) <= 14 else "OU " + principal.rsplit("/", 1)[-1]


def render(status: RegionStatus, out: Any, *, color: bool) -> None:
    """Print the status as rich tables (plain text when ``out`` is not a terminal)."""
    from rich.console import Console as RichConsole
    from rich.table import Table

    # Piped or redirected: as wide as the rows need (a script greps whole ids); on a terminal, long
    # ids fold onto a second line rather than lose their end.
    console = RichConsole(file=out, force_terminal=color, no_color=not color, width=None if color else 1000)
    console.print(f"{status.region}: transit gateway {status.transit_gateway_id} (ids from {status.source})")
    table = Table(title="Customers")
    principals = [_principal(row.principal) for row in status.customers]
    attachment_ids = [len(a["id"]) for row in status.customers for a in row.attachments]
    for column in (
        "customer",
        "principal",
        "RAM share",
        "invitation",
        "attachment",
        "associations",
        "members",
    ):
        # The ids people copy from here (account, attachment) keep a line of their own.
        widest = {
            "principal": max(map(len, principals), default=0),
            "attachment": max(attachment_ids, default=0),
        }
        table.add_column(column, overflow="fold", min_width=widest.get(column) or None)
    for row, principal in zip(status.customers, principals, strict=True):
        table.add_row(
            row.name + (" [!]" if row.problems else ""),
            principal,
            "\n".join(f"{d}: {row.share.get(d, '?')}" for d in row.domains),
            "\n".join(f"{d}: {row.invitation.get(d, '?')}" for d in row.domains),
            "\n".join(f"{a['id']} {a['state']}" for a in row.attachments) or "none",
            "\n".join(
                f"{d}: "
                + (", ".join(f"{a['subnet']} {a['state']}" for a in row.associations.get(d, [])) or "none")
                for d in row.domains
            ),
            "\n".join(f"{d}: {row.members.get(d, 0)}" for d in row.domains),
        )
    console.print(table)
    groups = Table(title=f"Groups (members per group quota: {MEMBERS_PER_GROUP})")
    for column in ("domain", "group", "address", "members", "sources"):
        groups.add_column(column, overflow="fold")
    for group in status.groups:
        groups.add_row(
            group.domain,
            group.name or "(not in config)",
            group.address,
            f"{group.members}/{group.quota}",
            str(group.sources),
        )
    console.print(groups)
    for intruder in status.intruders:
        where = f" in {intruder['domain']}" if intruder["domain"] else ""
        console.print(
            f"INTRUDER: account {intruder['account']}: {intruder['kind']} {intruder['resource']}{where} "
            f"({intruder['state']}): {intruder['why']}",
            style="bold red" if color else None,
            markup=False,
            soft_wrap=True,
        )
    for problem in status.problems:
        if not problem.startswith("intruder: "):
            console.print(
                f"problem: {problem}", style="yellow" if color else None, markup=False, soft_wrap=True
            )
    console.print("status: ok" if status.ok else f"status: {len(status.problems)} problem(s)")
