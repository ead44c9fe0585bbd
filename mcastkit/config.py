"""The mcastkit configuration model.

One YAML file describes a provider's multicast estate: the regions it runs in, the
multicast domains and groups in each, and the customer accounts entitled to receive
them. ``cdk synth`` and ``mcastkit validate`` read it through :func:`load_config`, so
both accept and reject exactly the same files.

Every rule here exists because of an AWS fact (see the README's config reference):
Transit Gateway quotas, the IGMPv2/static split of a domain, Nitro-only senders, the
one-domain-per-subnet rule and the reserved link-local multicast block.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mcastkit.rules import acl_plan, member_rule_counts

MULTICAST_RANGE = ipaddress.IPv4Network("224.0.0.0/4")
LOCAL_CONTROL_BLOCK = ipaddress.IPv4Network("224.0.0.0/24")

#: Commercial regions where the Transit Gateway FAQ lists multicast support; override with
#: ``allowed_regions`` (for example to pin a deployment to the regions you operate in).
DEFAULT_ALLOWED_REGIONS: tuple[str, ...] = (
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "eu-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-south-1",
    "ap-east-1",
    "sa-east-1",
    "me-south-1",
    "af-south-1",
    "ap-southeast-3",
    "me-central-1",
    "eu-central-2",
    "eu-south-2",
)

#: Instance families built on the Xen hypervisor: they cannot send multicast through a
#: Transit Gateway. Their ``.metal`` sizes (where they exist) are Nitro.
NON_NITRO_FAMILIES: frozenset[str] = frozenset(
    {
        "c1",
        "c3",
        "c4",
        "cc2",
        "cr1",
        "d2",
        "f1",
        "g2",
        "g3",
        "g3s",
        "h1",
        "hs1",
        "i2",
        "i3",
        "m1",
        "m2",
        "m3",
        "m4",
        "p2",
        "p3",
        "r3",
        "r4",
        "t1",
        "t2",
        "x1",
        "x1e",
    }
)

NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
ACCOUNT_ID_PATTERN = r"^\d{12}$"
SECRET_ARN_PATTERN = (
    r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$"
)
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
AccountId = Annotated[str, StringConstraints(pattern=ACCOUNT_ID_PATTERN)]
#: Plain words for the patterns above, used in error messages instead of the regex.
PATTERN_MEANINGS = {
    NAME_PATTERN: "must be 1-63 lowercase letters, digits or hyphens, not starting or ending with a hyphen",
    ACCOUNT_ID_PATTERN: "must be a 12-digit AWS account id (quote it in YAML)",
    SECRET_ARN_PATTERN: "must be the complete ARN of a Secrets Manager secret, ending in the "
    "6-character suffix (aws secretsmanager describe-secret --secret-id NAME --query ARN)",
}
OU_ARN_PATTERN = re.compile(
    r"^arn:aws[a-z-]*:organizations::(?P<account>\d{12}):ou/(?P<org>o-[a-z0-9]{10,32})/ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}$"
)
ACCOUNT_PATTERN = re.compile(r"^\d{12}$")
INSTANCE_TYPE_PATTERN = re.compile(r"^(?P<family>[a-z][a-z0-9-]*)\.(?P<size>[a-z0-9-]+)$")
AZ_PATTERN = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d[a-z]$")


class ConfigError(Exception):
    """A configuration file that cannot be used; ``str()`` names every bad field."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))

    def render(self) -> str:
        lines = [f"{self.source}: invalid configuration ({len(self.problems)} problem(s))"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class DomainMode(StrEnum):
    """How receivers join: IGMPv2 (dynamic) or statically registered sources/members."""

    IGMPV2 = "igmpv2"
    STATIC = "static"


def _quoted_account(value: Any) -> Any:
    """YAML reads an unquoted account id as a number (and drops leading zeros): say so."""
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(
            f'{value} is a number: write the account id as a quoted string, e.g. "{value:012d}" '
            "(YAML drops leading zeros of unquoted numbers)"
        )
    return value


def _network(value: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(value, strict=True)
    except ValueError as err:
        raise ValueError(f"{value!r} is not an IPv4 CIDR block ({err})") from None


def _overlaps(items: Iterable[tuple[str, str]]) -> list[str]:
    """Return a message per pair of overlapping (label, cidr) items."""
    seen: list[tuple[str, ipaddress.IPv4Network]] = []
    problems = []
    for label, cidr in items:
        net = ipaddress.IPv4Network(cidr)
        for other_label, other in seen:
            if net.overlaps(other):
                problems.append(f"{label} {cidr} overlaps {other_label} {other}")
        seen.append((label, net))
    return problems


def _duplicates(values: Iterable[Any]) -> list[Any]:
    return [value for value, count in Counter(values).items() if count > 1]


def _repeats(values: list[Any]) -> list[tuple[int, Any]]:
    """(index, value) of every value that already appeared earlier in the list."""
    return [(i, value) for i, value in enumerate(values) if value in values[:i]]


#: A problem that starts with a field path relative to its parent: ``subnets[0].cidr: ...``
#: or ``subnets[1].cidr 10.0.0.0/24 overlaps ...``.
_RELATIVE_PATH = re.compile(
    r"^([a-z_]+(\[\d+\])?(\.[a-z_]+(\[\d+\])?)*(?=:)|[a-z_]+\[\d+\](\.[a-z_]+)*(?= ))"
)


def _within(prefix: str, problem: str) -> str:
    """Join a parent path and a problem: ``subnets[0].cidr: ...`` -> ``regions.x.subnets[0].cidr: ...``."""
    return f"{prefix}.{problem}" if _RELATIVE_PATH.match(problem) else f"{prefix}: {problem}"


class Group(_Model):
    """One multicast group: an address and UDP port, with a name for humans and metrics."""

    name: Name
    address: str = Field(description="IPv4 group address in 224.0.0.0/4, outside 224.0.0.0/24")
    port: int = Field(ge=1, le=65535, description="UDP destination port")

    @field_validator("address")
    @classmethod
    def _multicast_address(cls, value: str) -> str:
        try:
            address = ipaddress.IPv4Address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IPv4 address") from None
        if address not in MULTICAST_RANGE:
            raise ValueError(f"{value} is not a multicast address (224.0.0.0/4)")
        if address in LOCAL_CONTROL_BLOCK:
            raise ValueError(
                f"{value} is in 224.0.0.0/24, reserved for local network control (IGMP, routing)"
            )
        return value


class Domain(_Model):
    """A Transit Gateway multicast domain and the groups carried in it."""

    name: Name
    mode: DomainMode = Field(default=DomainMode.IGMPV2)
    auto_accept_shared_associations: bool = Field(
        default=False,
        description="Accept customers' subnet associations without `mcastkit onboard accept` (default off)",
    )
    groups: list[Group] = Field(min_length=1)
    source_cidrs: list[str] = Field(
        min_length=1, description="CIDRs allowed to send UDP to this domain's groups"
    )
    static_sources: list[str] = Field(
        default_factory=list,
        description="ENI ids registered as sources; only for mode: static",
    )

    @field_validator("source_cidrs")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        for value in values:
            _network(value)
        return values

    @field_validator("static_sources")
    @classmethod
    def _enis(cls, values: list[str]) -> list[str]:
        for value in values:
            if not re.fullmatch(r"eni-[0-9a-f]{8,17}", value):
                raise ValueError(f"{value!r} is not an ENI id (eni-...)")
        return values

    @model_validator(mode="after")
    def _consistent(self) -> Domain:
        if self.mode is DomainMode.IGMPV2 and self.static_sources:
            raise ValueError(
                f"static_sources: domain {self.name!r} is igmpv2 but lists static_sources "
                f"{self.static_sources}: a domain supports IGMPv2 or static sources, never both"
            )
        problems = []
        first_of: dict[tuple[str, int], int] = {}
        first_named: dict[str, int] = {}
        for i, group in enumerate(self.groups):
            j = first_of.setdefault((group.address, group.port), i)
            if j != i:
                problems.append(
                    f"groups[{i}]: address:port {group.address}:{group.port} repeats groups[{j}] "
                    f"in domain {self.name!r}"
                )
            j = first_named.setdefault(group.name, i)
            if j != i:
                problems.append(
                    f"groups[{i}].name: {group.name!r} repeats groups[{j}] in domain {self.name!r}"
                )
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def igmpv2(self) -> bool:
        return self.mode is DomainMode.IGMPV2


class Subnet(_Model):
    """A multicast subnet: pinned to an AZ and associated with exactly one domain."""

    cidr: str
    availability_zone: str
    domain: Name

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        _network(value)
        return value

    @field_validator("availability_zone")
    @classmethod
    def _az(cls, value: str) -> str:
        if not AZ_PATTERN.fullmatch(value):
            raise ValueError(f"{value!r} is not an availability zone name such as eu-west-2a")
        return value


class Capacity(_Model):
    """ECS-on-EC2 capacity. Nitro instance types only: others cannot send multicast."""

    instance_type: str = "c6in.large"
    min: int = Field(default=1, ge=0, le=100)
    max: int = Field(default=2, ge=1, le=100)

    @field_validator("instance_type")
    @classmethod
    def _nitro(cls, value: str) -> str:
        match = INSTANCE_TYPE_PATTERN.fullmatch(value)
        if not match:
            raise ValueError(f"{value!r} is not an EC2 instance type such as c6in.large")
        if match["family"] in NON_NITRO_FAMILIES and match["size"] != "metal":
            raise ValueError(
                f"{value} is not a Nitro instance type; non-Nitro instances cannot send "
                "multicast through a Transit Gateway (choose e.g. c6in, m6i, c7i)"
            )
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Capacity:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


#: The port the relay serves ``/metrics`` and ``/healthz`` on in its ECS task.
RELAY_METRICS_PORT = 9400


class Relay(_Model):
    """The egress relay that re-emits datacenter multicast into a domain (ECS service)."""

    domain: Name
    port: int = Field(default=7400, ge=1024, le=65535, description="TCP port the egress listens on")
    datacenter_cidrs: list[str] = Field(min_length=1, description="Only these CIDRs may reach the relay port")
    ttl: int = Field(default=8, ge=1, le=255)
    desired_count: int = Field(default=1, ge=0, le=10)
    cpu: int = Field(default=512, ge=256)
    memory_mib: int = Field(default=512, ge=128)
    secret_arn: str | None = Field(
        default=None,
        pattern=SECRET_ARN_PATTERN,
        description="Complete ARN (with its 6-character suffix: ECS accepts no name or partial ARN) of "
        "an existing Secrets Manager secret holding the shared relay secret; default: a generated one",
    )
    connect: list[str] = Field(
        default_factory=list,
        description="Datacenter ingress relays (IPV4:PORT, inside datacenter_cidrs) the egress dials; "
        "default: none, the egress listens on port and the ingress dials it",
    )

    @property
    def link_count(self) -> int:
        """Datacenter links: one per ``connect`` endpoint, else one per datacenter CIDR."""
        return len(self.connect or self.datacenter_cidrs)

    @field_validator("port")
    @classmethod
    def _not_the_metrics_port(cls, value: int) -> int:
        if value == RELAY_METRICS_PORT:
            raise ValueError(f"{value} is the relay's metrics port; choose another relay port")
        return value

    @field_validator("datacenter_cidrs")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        for value in values:
            _network(value)
            if ipaddress.IPv4Network(value).prefixlen == 0:
                raise ValueError(f"{value} would open the relay to the world")
        return values

    @field_validator("connect")
    @classmethod
    def _endpoints(cls, values: list[str], info: ValidationInfo) -> list[str]:
        datacenter = [ipaddress.IPv4Network(c) for c in info.data.get("datacenter_cidrs", [])]
        for value in values:
            host, _, port = value.rpartition(":")
            try:
                address = ipaddress.IPv4Address(host)
            except ValueError:
                raise ValueError(f"{value!r} is not IPV4:PORT") from None
            if not port.isdigit() or not 1 <= int(port) <= 65535:
                raise ValueError(f"{value!r} is not IPV4:PORT (port 1-65535)")
            if datacenter and not any(address in net for net in datacenter):
                raise ValueError(f"{value} is not inside datacenter_cidrs {[str(n) for n in datacenter]}")
        return values


class Probe(_Model):
    """Sender/receiver probe tasks that prove delivery inside a domain."""

    domain: Name
    group: Name
    receivers: int = Field(default=2, ge=0, le=20)
    #: A proof of delivery, not a load test: a receiver holds a minute of latency samples.
    rate: int = Field(default=100, ge=1, le=100_000, description="messages per second the sender task paces")


def _values_matching(values: dict[str, str], pattern: str, what: str) -> dict[str, str]:
    for name, value in values.items():
        if not re.fullmatch(pattern, value):
            raise ValueError(f"{name}: {value!r} is not {what}")
    return values


class SharedIds(_Model):
    """Ids of the provider's resources, recorded after `cdk deploy` for customer hand-off."""

    transit_gateway_id: str = Field(pattern=r"^tgw-[0-9a-f]{8,17}$")
    domain_ids: dict[Name, str] = Field(default_factory=dict)
    share_arns: dict[Name, str] = Field(
        default_factory=dict,
        description="RAM resource share ARN per domain, for the customer's `mcastkit onboard join`",
    )

    @field_validator("share_arns")
    @classmethod
    def _share_arns(cls, values: dict[str, str]) -> dict[str, str]:
        pattern = r"arn:aws[a-z-]*:ram:[a-z0-9-]+:\d{12}:resource-share/[0-9a-f-]{36}"
        return _values_matching(values, pattern, "a RAM resource share ARN")

    @field_validator("domain_ids")
    @classmethod
    def _domain_ids(cls, values: dict[str, str]) -> dict[str, str]:
        return _values_matching(values, r"tgw-mcast-domain-[0-9a-f]{8,17}", "a multicast domain id")


class Region(_Model):
    """Everything mcastkit builds in one AWS region."""

    availability_zones: list[str] = Field(min_length=1, max_length=6)
    vpc_cidr: str
    subnets: list[Subnet] = Field(min_length=1)
    transit_gateway_asn: int = Field(default=64512)
    auto_accept_shared_attachments: bool = Field(
        default=False,
        description="Accept customers' VPC attachments without `mcastkit onboard accept` (default off)",
    )
    capacity: Capacity = Field(default_factory=Capacity)
    domains: list[Domain] = Field(min_length=1)
    relay: Relay | None = None
    probe: Probe | None = None
    shared: SharedIds | None = None

    @field_validator("vpc_cidr")
    @classmethod
    def _vpc_cidr(cls, value: str) -> str:
        net = _network(value)
        if not 16 <= net.prefixlen <= 28:
            raise ValueError(f"{value}: a VPC CIDR must be between /16 and /28")
        return value

    @field_validator("transit_gateway_asn")
    @classmethod
    def _asn(cls, value: int) -> int:
        if not (64512 <= value <= 65534 or 4200000000 <= value <= 4294967294):
            raise ValueError(f"{value} is not a private ASN (64512-65534 or 4200000000-4294967294)")
        return value

    @field_validator("availability_zones")
    @classmethod
    def _azs(cls, values: list[str]) -> list[str]:
        for value in values:
            if not AZ_PATTERN.fullmatch(value):
                raise ValueError(f"{value!r} is not an availability zone name such as eu-west-2a")
        dupes = _duplicates(values)
        if dupes:
            raise ValueError(f"repeated availability zone(s) {dupes}")
        return values

    def domain(self, name: str) -> Domain:
        return next(d for d in self.domains if d.name == name)

    def subnets_of(self, domain: str) -> list[Subnet]:
        return [s for s in self.subnets if s.domain == domain]


def _id_collisions(where: str, names: list[str]) -> list[str]:
    """Names become CloudFormation ids and export names without their hyphens
    (``md-1`` and ``md1`` are both ``Md1``): two such names cannot both be used."""
    problems = []
    seen: dict[str, str] = {}
    for name in names:
        key = name.replace("-", "")
        if key in seen and seen[key] != name:
            problems.append(f"{where}: names {seen[key]!r} and {name!r} differ only by hyphens")
        seen.setdefault(key, name)
    return problems


def _unheard_senders(region: Region) -> list[str]:
    """The relay and the probe sender send from any subnet of their domain, and members admit
    UDP only from the domain's ``source_cidrs``: those subnets must lie inside them."""
    problems: list[str] = []
    known = [d.name for d in region.domains]
    for field, section in (("relay", region.relay), ("probe", region.probe)):
        if section is None or section.domain not in known:
            continue
        domain = region.domain(section.domain)
        if not domain.igmpv2:
            problems.append(
                f"{field}.domain: {domain.name!r} is a static-sources domain: only registered ENIs may "
                f"send or receive there, and the {field}'s task ENIs change with every deployment; "
                "use an igmpv2 domain"
            )
            continue
        sources = [ipaddress.IPv4Network(c) for c in domain.source_cidrs]
        for subnet in region.subnets_of(domain.name):
            if not any(ipaddress.IPv4Network(subnet.cidr).subnet_of(source) for source in sources):
                problems.append(
                    f"{field}.domain: subnet {subnet.cidr} of domain {domain.name!r} is not inside its "
                    f"source_cidrs {domain.source_cidrs}: members would drop what the {field} sends"
                )
    return problems


class Entitlement(_Model):
    """The domains a customer may receive in one region."""

    region: str
    domains: list[Name] = Field(min_length=1)


class Customer(_Model):
    """A receiving account (or an Organizations OU) and what it may receive."""

    name: Name
    principal: str = Field(description="12-digit AWS account id or an Organizations OU ARN")
    entitlements: list[Entitlement] = Field(default_factory=list)

    _quoted_principal = field_validator("principal", mode="before")(_quoted_account)

    @field_validator("principal")
    @classmethod
    def _principal(cls, value: str) -> str:
        if ACCOUNT_PATTERN.fullmatch(value) or OU_ARN_PATTERN.fullmatch(value):
            return value
        raise ValueError(
            f"{value!r} is neither a 12-digit account id nor an Organizations OU ARN "
            "(arn:aws:organizations::<account>:ou/o-.../ou-...)"
        )

    @property
    def is_account(self) -> bool:
        return bool(ACCOUNT_PATTERN.fullmatch(self.principal))

    @property
    def organization_id(self) -> str | None:
        match = OU_ARN_PATTERN.fullmatch(self.principal)
        return match["org"] if match else None

    def domains_in(self, region: str) -> list[str]:
        return [d for e in self.entitlements if e.region == region for d in e.domains]


class Quotas(_Model):
    """Transit Gateway quotas the config is checked against (raise them if AWS raised yours)."""

    domains_per_transit_gateway: int = Field(default=20, ge=1)
    groups_per_transit_gateway: int = Field(
        default=5000,
        ge=1,
        description="each group needs a source and a member; members + sources per TGW "
        "are capped at 10,000 (not adjustable)",
    )
    customers_per_domain: int = Field(
        default=99,
        ge=1,
        description="members per group are capped at 100 (not adjustable); one is the provider's",
    )
    security_group_rules: int = Field(
        default=60,
        ge=1,
        description="inbound or outbound rules per security group (VPC quota, adjustable)",
    )
    network_acl_rules: int = Field(
        default=20,
        ge=1,
        description="inbound or outbound rules per network ACL (VPC quota, adjustable up to 40)",
    )


class Config(_Model):
    """The whole estate: provider, regions, customers."""

    project: Name
    provider_account: AccountId
    organization_id: str | None = Field(
        default=None, pattern=r"^o-[a-z0-9]{10,32}$", description="the provider's AWS Organization"
    )
    allowed_regions: list[str] = Field(default_factory=lambda: list(DEFAULT_ALLOWED_REGIONS))

    _quoted_provider = field_validator("provider_account", mode="before")(_quoted_account)
    quotas: Quotas = Field(default_factory=Quotas)
    regions: dict[str, Region] = Field(min_length=1)
    customers: list[Customer] = Field(default_factory=list)

    def member_acl_room(self, region: Region) -> int:
        """Network ACL entries per direction the members' rules may take in ``region``: the
        quota less the relay's (one each way per datacenter link), which share the ACL."""
        return self.quotas.network_acl_rules - (region.relay.link_count if region.relay else 0)

    @model_validator(mode="after")
    def _cross_checks(self) -> Config:
        problems: list[str] = []
        for region_name, region in self.regions.items():
            region_path = f"regions.{region_name}"
            problems += [_within(region_path, p) for p in self._region_problems(region_name, region)]
        problems += _overlaps((f"regions.{n}.vpc_cidr", r.vpc_cidr) for n, r in self.regions.items())
        problems += self._customer_problems()
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _region_problems(self, name: str, region: Region) -> list[str]:
        problems: list[str] = []
        if name not in self.allowed_regions:
            problems.append(f"region {name!r} is not in allowed_regions {self.allowed_regions}")
        for i, az in enumerate(region.availability_zones):
            if az[:-1] != name:
                problems.append(f"availability_zones[{i}]: {az} is not in region {name}")
        domain_names = [d.name for d in region.domains]
        problems += _id_collisions("domains", domain_names)
        for i, domain in enumerate(region.domains):
            problems += _id_collisions(f"domains[{i}].groups", [g.name for g in domain.groups])
        for i, dupe in _repeats(domain_names):
            problems.append(f"domains[{i}].name: {dupe!r} is used twice")
        if len(region.domains) > self.quotas.domains_per_transit_gateway:
            problems.append(
                f"domains: {len(region.domains)} domains exceed the quota of "
                f"{self.quotas.domains_per_transit_gateway} per transit gateway "
                "(quotas.domains_per_transit_gateway)"
            )
        groups = sum(len(d.groups) for d in region.domains)
        if groups > self.quotas.groups_per_transit_gateway:
            problems.append(
                f"domains: {groups} groups exceed the quota of "
                f"{self.quotas.groups_per_transit_gateway} per transit gateway "
                "(quotas.groups_per_transit_gateway)"
            )
        inbound, outbound = member_rule_counts(region.domains)
        if max(inbound, outbound) > self.quotas.security_group_rules:
            problems.append(
                f"domains: the members security group would need {inbound} inbound and {outbound} "
                f"outbound rules, over quotas.security_group_rules ({self.quotas.security_group_rules}); "
                "use contiguous group ports and fewer source CIDRs, or raise the VPC quota"
            )
        # The network stack's MemberRules (HTTPS out, HTTPS in from the VPC for the endpoints),
        # plus one entry each way per relay link to the datacenter, share one network ACL.
        room = self.member_acl_room(region)
        acl = acl_plan(region.domains, https_egress=True, serve_https_to=region.vpc_cidr, limit=room)
        relay_links = self.quotas.network_acl_rules - room
        acl_in, acl_out = (len(rules) + relay_links for rules in acl)
        if max(acl_in, acl_out) > self.quotas.network_acl_rules:
            problems.append(
                f"domains: the multicast subnets' network ACL would need {acl_in} inbound and {acl_out} "
                f"outbound entries, over quotas.network_acl_rules ({self.quotas.network_acl_rules}); "
                "summarize source_cidrs and relay.datacenter_cidrs, or raise the VPC quota"
            )
        vpc = ipaddress.IPv4Network(region.vpc_cidr)
        for i, subnet in enumerate(region.subnets):
            where = f"subnets[{i}]"
            if not ipaddress.IPv4Network(subnet.cidr).subnet_of(vpc):
                problems.append(f"{where}.cidr: {subnet.cidr} is not inside vpc_cidr {region.vpc_cidr}")
            if subnet.availability_zone not in region.availability_zones:
                problems.append(
                    f"{where}.availability_zone: {subnet.availability_zone} is not one of "
                    f"availability_zones {region.availability_zones}"
                )
            if subnet.domain not in domain_names:
                problems.append(f"{where}.domain: {subnet.domain!r} is not a domain of this region")
        problems += _overlaps((f"subnets[{i}].cidr", s.cidr) for i, s in enumerate(region.subnets))
        # The VPC has one Transit Gateway attachment (a second one is refused with
        # DuplicateTransitGatewayAttachment), an attachment takes one subnet per zone, and a
        # domain association names a subnet of that attachment: so one multicast subnet per zone.
        first_in_zone: dict[str, int] = {}
        for i, subnet in enumerate(region.subnets):
            j = first_in_zone.setdefault(subnet.availability_zone, i)
            if j != i:
                problems.append(
                    f"subnets[{i}].availability_zone: {subnet.availability_zone} already holds "
                    f"subnets[{j}] ({region.subnets[j].cidr}); the Transit Gateway attachment takes one "
                    "multicast subnet per availability zone, so give each domain its own zones"
                )
        for domain in region.domains:
            if not region.subnets_of(domain.name):
                problems.append(f"domains.{domain.name}: no subnet is associated with it")
        if region.relay and region.relay.domain not in domain_names:
            problems.append(f"relay.domain: {region.relay.domain!r} is not a domain of this region")
        if region.probe:
            if region.probe.domain not in domain_names:
                problems.append(f"probe.domain: {region.probe.domain!r} is not a domain of this region")
            elif region.probe.group not in [g.name for g in region.domain(region.probe.domain).groups]:
                problems.append(
                    f"probe.group: {region.probe.group!r} is not a group of domain {region.probe.domain!r}"
                )
        problems += _unheard_senders(region)
        if region.shared:
            for dname in region.shared.domain_ids:
                if dname not in domain_names:
                    problems.append(f"shared.domain_ids.{dname}: not a domain of this region")
            for dname in region.shared.share_arns:
                if dname not in domain_names:
                    problems.append(f"shared.share_arns.{dname}: not a domain of this region")
        return problems

    def _customer_problems(self) -> list[str]:
        problems: list[str] = []
        for i, dupe in _repeats([c.name for c in self.customers]):
            problems.append(f"customers[{i}].name: {dupe!r} is used twice")
        for i, dupe in _repeats([c.principal for c in self.customers]):
            problems.append(f"customers[{i}].principal: {dupe} is used twice")
        for i, customer in enumerate(self.customers):
            where = f"customers[{i}] ({customer.name})"
            if customer.principal == self.provider_account:
                problems.append(f"{where}.principal: {customer.principal} is the provider account")
            org = customer.organization_id
            if org is not None and org != self.organization_id:
                problems.append(
                    f"{where}.principal: OU {customer.principal} is not in the provider's "
                    f"organization (organization_id: {self.organization_id})"
                )
            for j, entitlement in enumerate(customer.entitlements):
                ewhere = f"{where}.entitlements[{j}]"
                region = self.regions.get(entitlement.region)
                if region is None:
                    problems.append(
                        f"{ewhere}.region: {entitlement.region!r} is not a configured region "
                        f"{sorted(self.regions)}"
                    )
                    continue
                known = [d.name for d in region.domains]
                for wanted in entitlement.domains:
                    if wanted not in known:
                        problems.append(
                            f"{ewhere}.domains: {wanted!r} is not a domain of {entitlement.region} {known}"
                        )
        for region_name, region in self.regions.items():
            for domain in region.domains:
                count = len(self.customers_of(region_name, domain.name))
                if count > self.quotas.customers_per_domain:
                    problems.append(
                        f"regions.{region_name}.domains.{domain.name}: {count} customers exceed "
                        f"quotas.customers_per_domain ({self.quotas.customers_per_domain})"
                    )
        return problems

    # Queries the stacks and the onboarding commands share.

    def customers_of(self, region: str, domain: str) -> list[Customer]:
        """Customers entitled to ``domain`` in ``region``, in config order."""
        return [c for c in self.customers if domain in c.domains_in(region)]

    def customer(self, name: str) -> Customer:
        for customer in self.customers:
            if customer.name == name:
                return customer
        raise KeyError(name)

    def allow_external_principals(self, region: str, domain: str) -> bool:
        """False only when every principal of the share is an OU of the provider's organization."""
        principals = self.customers_of(region, domain)
        return not principals or not all(
            c.organization_id is not None and c.organization_id == self.organization_id for c in principals
        )

    def stack_name(self, region: str, kind: str) -> str:
        return f"{self.project}-{region}-{kind}"


def _location(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _format_error(error: dict[str, Any]) -> list[str]:
    location = _location(tuple(p for p in error["loc"] if not str(p).startswith("function-")))
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] in {"missing", "extra_forbidden"}:
        message = "required field is missing" if error["type"] == "missing" else "unknown field"
        return [f"{location}: {message}"]
    if error["type"] == "value_error" and (not location or _RELATIVE_PATH.match(message) or "\n" in message):
        # Cross-field checks already name their field path, relative to ``location``.
        return [_within(location, line) if location else line for line in message.splitlines()]
    if error["type"] == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern", "")
        message = PATTERN_MEANINGS.get(pattern, f"must match {pattern}")
    value = error.get("input")
    shown = "" if isinstance(value, (dict, list)) or str(value) in message else f" (got {value!r})"
    return [f"{location or 'config'}: {message}{shown}"]


def parse_config(data: Any, source: str = "config") -> Config:
    """Validate already-loaded YAML data; raise :class:`ConfigError` naming each bad field."""
    if not isinstance(data, dict):
        raise ConfigError(source, ["the file must hold a mapping with project, provider_account, regions"])
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        problems = [line for e in err.errors() for line in _format_error(dict(e))]
        raise ConfigError(source, problems) from None


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(str(path), [f"cannot read the file: {err.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(str(path), [f"not valid YAML: {err}"]) from None
    return parse_config(data, str(path))
