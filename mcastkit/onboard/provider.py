"""The provider's side of a region: its transit gateway, its domains, and who may use them.

Where the ids come from, in order:

1. ``regions.<region>.shared`` in the config (recorded after the provider deploys);
2. the outputs of the CloudFormation stack ``{project}-{region}-network``.

Tags are not used: anyone who can tag a resource could redirect the commands.

Entitlement is decided per account. A customer whose principal is an account id is that
account. A customer whose principal is an Organizations OU covers every account under it,
including nested OUs (RAM shares with an OU the same way); those accounts are listed with
``organizations:ListAccountsForParent``, which works only from the management account or
a delegated administrator. When the listing is refused, an account that is not otherwise
known is *unverified*: ``accept`` leaves its requests pending and ``status`` reports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mcastkit.config import Config, Customer
from mcastkit.config.names import DOMAIN_ID, OU_ID, TRANSIT_GATEWAY_ID, TRANSIT_GATEWAY_ID_KEY, domain_key
from mcastkit.exit import ExitStatus
from mcastkit.onboard.aws import Aws, AwsFailure


@dataclass(frozen=True)
class SharedDomain:
    name: str
    domain_id: str
    arn: str | None = None
    auto_accept: bool = False
    state: str | None = None


@dataclass(frozen=True)
class ProviderRegion:
    """The provider's transit gateway and domains in one region, as AWS describes them."""

    region: str
    transit_gateway_id: str
    source: str
    transit_gateway_arn: str | None = None
    auto_accept_attachments: bool = False
    domains: dict[str, SharedDomain] = field(default_factory=dict)

    def domain_named(self, domain_id: str) -> str | None:
        return next((d.name for d in self.domains.values() if d.domain_id == domain_id), None)

    def attachments(self, aws: Aws) -> list[dict[str, Any]]:
        """Every attachment to the transit gateway, whoever owns it."""
        tgw = self.transit_gateway_id
        return aws.pages(
            "ec2",
            "describe_transit_gateway_attachments",
            "TransitGatewayAttachments",
            tgw,
            Filters=[{"Name": "transit-gateway-id", "Values": [tgw]}],
        )

    def associations(self, aws: Aws, domain: SharedDomain) -> list[dict[str, Any]]:
        """Every subnet association of ``domain``, whoever owns the subnet."""
        return aws.pages(
            "multicast",
            "get_transit_gateway_multicast_domain_associations",
            "MulticastDomainAssociations",
            domain.domain_id,
            TransitGatewayMulticastDomainId=domain.domain_id,
        )


def recorded_ids(config: Config, region: str) -> tuple[str | None, dict[str, str]]:
    """The TGW and domain ids recorded in the config (``regions.<region>.shared``), if any."""
    shared = config.regions[region].shared
    if shared is None:
        return None, {}
    return shared.transit_gateway_id, dict(shared.domain_ids)


def ids_from_outputs(
    config: Config, region: str, outputs: list[dict[str, Any]]
) -> tuple[str | None, dict[str, str]]:
    """TGW and domain ids from the network stack's outputs (``TransitGatewayId``, ``<Domain>DomainId``)."""
    values = {str(o.get("OutputKey")): str(o.get("OutputValue", "")) for o in outputs}
    tgw_id = values.get(TRANSIT_GATEWAY_ID_KEY)
    domain_ids = {
        d.name: values[domain_key(d.name)]
        for d in config.regions[region].domains
        if DOMAIN_ID.match(values.get(domain_key(d.name), ""))
    }
    return (tgw_id if tgw_id and TRANSIT_GATEWAY_ID.match(tgw_id) else None), domain_ids


def find_provider_region(aws: Aws, config: Config, region: str) -> ProviderRegion:
    """Find and describe the provider's TGW and domains in ``region`` (see the module docstring)."""
    tgw_id, domain_ids = recorded_ids(config, region)
    source = f"config regions.{region}.shared"
    if tgw_id is None:
        stack = config.stack_name(region, "network")
        source = f"stack {stack} outputs"
        try:
            with aws.call("cloudformation:DescribeStacks", f"stack {stack}"):
                stacks = aws.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
        except AwsFailure as err:
            if err.status is not ExitStatus.FAILURE:
                raise
            raise AwsFailure(
                f"{err}; deploy the network stack or record the ids under regions.{region}.shared",
                ExitStatus.FAILURE,
            ) from None
        tgw_id, domain_ids = ids_from_outputs(config, region, stacks[0].get("Outputs", []) if stacks else [])
        if tgw_id is None:
            raise AwsFailure(
                f"account {aws.account}, region {region}, stack {stack}: "
                "no transit gateway id in its outputs; "
                f"record it under regions.{region}.shared.transit_gateway_id",
                ExitStatus.FAILURE,
            )
    missing = [d.name for d in config.regions[region].domains if d.name not in domain_ids]
    if missing:
        raise AwsFailure(
            f"account {aws.account}, region {region}, {source}: no domain id for {', '.join(missing)}; "
            f"record it under regions.{region}.shared.domain_ids",
            ExitStatus.FAILURE,
        )
    with aws.call("ec2:DescribeTransitGateways", tgw_id):
        gateways = aws.ec2.describe_transit_gateways(TransitGatewayIds=[tgw_id])["TransitGateways"]
    if not gateways:
        raise AwsFailure(f"account {aws.account}, region {region}, {tgw_id}: not found", ExitStatus.FAILURE)
    gateway = gateways[0]
    by_id = {v: k for k, v in domain_ids.items()}
    described = aws.pages(
        "multicast",
        "describe_transit_gateway_multicast_domains",
        "TransitGatewayMulticastDomains",
        ", ".join(sorted(by_id)),
        TransitGatewayMulticastDomainIds=sorted(by_id),
    )
    domains: dict[str, SharedDomain] = {}
    for item in described:
        name = by_id.get(item["TransitGatewayMulticastDomainId"])
        if name is None:
            continue
        domains[name] = SharedDomain(
            name=name,
            domain_id=item["TransitGatewayMulticastDomainId"],
            arn=item.get("TransitGatewayMulticastDomainArn"),
            auto_accept=item.get("Options", {}).get("AutoAcceptSharedAssociations") == "enable",
            state=item.get("State"),
        )
    absent = sorted(set(domain_ids) - set(domains))
    if absent:
        raise AwsFailure(
            f"account {aws.account}, region {region}, {', '.join(domain_ids[n] for n in absent)}: "
            f"multicast domain(s) {', '.join(absent)} not found",
            ExitStatus.FAILURE,
        )
    return ProviderRegion(
        region=region,
        transit_gateway_id=tgw_id,
        source=source,
        transit_gateway_arn=gateway.get("TransitGatewayArn"),
        auto_accept_attachments=gateway.get("Options", {}).get("AutoAcceptSharedAttachments") == "enable",
        domains=domains,
    )


class Verdict(StrEnum):
    ENTITLED = "entitled"
    NOT_ENTITLED = "not entitled"
    UNVERIFIED = "unverified"


@dataclass
class Entitlements:
    """Who may attach to the TGW and associate with each domain in one region."""

    config: Config
    region: str
    aws: Aws
    _ou_accounts: dict[str, set[str] | str] = field(default_factory=dict)

    def customers(self) -> list[Customer]:
        return [c for c in self.config.customers if c.domains_in(self.region)]

    def ou_accounts(self, customer: Customer) -> set[str] | str:
        """Accounts under an OU customer, or the reason they cannot be listed."""
        if customer.name not in self._ou_accounts:
            self._ou_accounts[customer.name] = self._list_ou(customer.principal)
        return self._ou_accounts[customer.name]

    def _list_ou(self, ou_arn: str) -> set[str] | str:
        match = OU_ID.search(ou_arn)
        if match is None:
            return f"{ou_arn} is not an OU ARN"
        organizations = self.aws.client("organizations")
        accounts: set[str] = set()
        parents = [match.group(0)]
        try:
            while parents:
                parent = parents.pop()
                for page in organizations.get_paginator("list_accounts_for_parent").paginate(ParentId=parent):
                    accounts.update(
                        a["Id"] for a in page["Accounts"] if a.get("Status", "ACTIVE") == "ACTIVE"
                    )
                pages = organizations.get_paginator("list_organizational_units_for_parent").paginate(
                    ParentId=parent
                )
                for page in pages:
                    parents.extend(ou["Id"] for ou in page["OrganizationalUnits"])
        except (BotoCoreError, ClientError) as err:
            code = err.response.get("Error", {}).get("Code", "") if isinstance(err, ClientError) else ""
            return f"cannot list the accounts of {ou_arn} ({code or type(err).__name__})"
        return accounts

    def customers_covering(self, account: str) -> tuple[list[Customer], list[str]]:
        """Every customer entry that covers ``account`` (its own entry, then each OU holding it),
        and why an OU could not be listed."""
        covering = [c for c in self.customers() if c.is_account and c.principal == account]
        reasons = []
        for customer in self.customers():
            if customer.is_account:
                continue
            listed = self.ou_accounts(customer)
            if isinstance(listed, str):
                reasons.append(listed)
            elif account in listed:
                covering.append(customer)
        return covering, reasons

    def verdict(self, account: str, domain: str | None = None) -> tuple[Customer | None, Verdict, str]:
        """May ``account`` use ``domain`` (or, with ``None``, attach to the TGW at all) in this region?

        An account may be covered by its own entry and by OU entries at once (RAM shares each
        domain with all of them): it is entitled to the union of their domains.
        """
        covering, reasons = self.customers_covering(account)
        for customer in covering:
            if domain is None or domain in customer.domains_in(self.region):
                return customer, Verdict.ENTITLED, f"{customer.name} is entitled"
        if reasons and (not covering or domain is not None):
            # An OU we cannot list might still grant it: leave the decision to a person.
            return (covering[0] if covering else None), Verdict.UNVERIFIED, "; ".join(reasons)
        if not covering:
            return None, Verdict.NOT_ENTITLED, f"account {account} is not a customer in {self.region}"
        names = ", ".join(c.name for c in covering)
        return covering[0], Verdict.NOT_ENTITLED, f"{names} is not entitled to {domain} in {self.region}"
