"""The configuration model: one YAML file, parsed once into typed values.

Each field validator checks one value and raises :class:`FieldProblem` naming it; checks that
relate fields to each other live in :mod:`mcastkit.config.checks` and run after these. Addresses
go through :mod:`mcastkit.net.addresses`, the same parsers the command line uses.
"""

from __future__ import annotations

import re
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    field_validator,
)

from mcastkit.config import facts
from mcastkit.config.names import (
    ACCOUNT_ID_PATTERN,
    DOMAIN_ID,
    EMAIL_PATTERN,
    ENDPOINT_SERVICE_NAME,
    ENI_ID_PATTERN,
    HTTPS_URL_PATTERN,
    IAM_ROLE_ARN_PATTERN,
    NAME_PATTERN,
    ORGANIZATION_ID_PATTERN,
    OU_ARN,
    OVERLAY_NAME_PATTERN,
    RELAY_METRICS_PORT,
    SECRET_ARN_PATTERN,
    SHARE_ARN,
    STREAM_NAME_MAX,
    TRANSIT_GATEWAY_ID_PATTERN,
    WIREGUARD_KEY_PATTERN,
    stack_name,
)
from mcastkit.config.problems import FieldProblem
from mcastkit.net.addresses import AddressError, Endpoint, GroupPort, data_group, parse_endpoint, parse_group
from mcastkit.stream.fsync import Fsync

INSTANCE_TYPE = re.compile(r"^(?P<family>[a-z][a-z0-9-]*)\.(?P<size>[a-z0-9-]+)$")
AVAILABILITY_ZONE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d[a-z]$")
ACCOUNT_ID = re.compile(ACCOUNT_ID_PATTERN)


def _unquoted_number(value: Any) -> Any:
    """YAML reads an unquoted account id as a number, dropping leading zeros (or as octal): refuse
    it, showing what was written; never guess the digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        written = getattr(value, "source", str(value))
        quoted = f'"{written}"' if re.fullmatch(r"\d{12}", written) else "the 12 digits in quotes"
        raise FieldProblem(
            f"{written} is a number to YAML, not an account id (YAML drops leading zeros and reads a "
            "leading 0 as octal)",
            fix=f"write {quoted}",
        )
    return value


def _network(value: Any) -> IPv4Network:
    if isinstance(value, IPv4Network):
        return value
    try:
        network = IPv4Network(str(value), strict=True)
    except ValueError as err:
        raise FieldProblem(f"{value!r} is not an IPv4 CIDR block ({err})") from None
    # A network wider than a /8 is refused by its field's own rule (VPC size, datacenter width,
    # inside the VPC), which says more than "overlaps 0.0.0.0/8".
    for reserved in facts.NOT_UNICAST:
        if network.prefixlen >= facts.WIDEST_DATACENTER_PREFIX and network.overlaps(reserved):
            raise FieldProblem(
                f"{network} overlaps {reserved}, which is not unicast address space",
                fix="use a private range such as 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16",
            )
    return network


def _group_address(value: Any) -> IPv4Address:
    if isinstance(value, IPv4Address):
        return value
    try:
        return data_group(str(value))
    except AddressError as err:
        raise FieldProblem(str(err)) from None


def _ingress_endpoint(value: Any) -> Endpoint:
    if isinstance(value, Endpoint):
        return value
    try:
        endpoint = parse_endpoint(str(value), flag="")
        IPv4Address(endpoint.host)
    except (AddressError, ValueError):
        raise FieldProblem(f"{value!r} is not IPV4:PORT", fix="write e.g. 192.168.40.10:7400") from None
    return endpoint


def _availability_zone(value: str) -> str:
    if not AVAILABILITY_ZONE.fullmatch(value):
        raise FieldProblem(f"{value!r} is not an availability zone name such as eu-west-2a")
    return value


def _quoted_version(value: Any) -> Any:
    """YAML reads an unquoted 1.30 as the number 1.3: refuse numbers, never guess the version."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        written = getattr(value, "source", str(value))
        raise FieldProblem(
            f"{written} is a number to YAML, not a version (it reads 1.30 as 1.3)",
            fix=f'write it in quotes, e.g. "{facts.EKS_DEFAULT_KUBERNETES_VERSION}"',
        )
    return value


def _nitro_instance_type(value: str) -> str:
    match = INSTANCE_TYPE.fullmatch(value)
    if not match:
        raise FieldProblem(f"{value!r} is not an EC2 instance type such as c6in.large")
    if match["family"] in facts.NON_NITRO_FAMILIES and match["size"] != "metal":
        raise FieldProblem(
            f"{value} is not a Nitro instance type; non-Nitro instances cannot send "
            "multicast through a Transit Gateway",
            fix="choose e.g. c6in, m6i or c7i",
        )
    return value


def architecture_of(instance_type: str) -> str:
    """``x86_64`` or ``arm64`` (Graviton families have a ``g`` after the generation: c7gn, m7g)."""
    known = facts.INSTANCE_TYPES.get(instance_type)
    if known:
        return known[1]
    graviton = re.match(r"^[a-z]+\d+g", instance_type) or instance_type.startswith("a1.")
    return "arm64" if graviton else "x86_64"


def _sized(value: IPv4Network, what: str, bounds: tuple[int, int]) -> IPv4Network:
    shortest, longest = bounds
    if not shortest <= value.prefixlen <= longest:
        raise FieldProblem(f"{value}: a {what} CIDR must be between /{shortest} and /{longest}")
    return value


Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
AvailabilityZone = Annotated[str, AfterValidator(_availability_zone)]
AccountId = Annotated[str, BeforeValidator(_unquoted_number), StringConstraints(pattern=ACCOUNT_ID_PATTERN)]
Cidr = Annotated[IPv4Network, BeforeValidator(_network), PlainSerializer(str, return_type=str)]
IngressEndpoint = Annotated[
    Endpoint, BeforeValidator(_ingress_endpoint), PlainSerializer(str, return_type=str)
]


def _group_port(value: Any) -> GroupPort:
    if isinstance(value, GroupPort):
        return value
    try:
        return parse_group(str(value), flag="")
    except AddressError as err:
        raise FieldProblem(str(err), fix="write GROUP:PORT, e.g. 239.10.1.1:30001") from None


GroupPortField = Annotated[GroupPort, BeforeValidator(_group_port), PlainSerializer(str, return_type=str)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class DomainMode(StrEnum):
    """How receivers join: IGMPv2 (dynamic) or statically registered sources/members."""

    IGMPV2 = "igmpv2"
    STATIC = "static"


class Group(_Model):
    """One multicast group: an address and UDP port, with a name for humans and metrics."""

    name: Name
    address: Annotated[IPv4Address, BeforeValidator(_group_address), PlainSerializer(str, return_type=str)]
    port: int = Field(ge=1, le=65535, description="UDP destination port")
    probe: bool = Field(
        default=False,
        description="a group for the probe only: never a feed (no relay emits to it, no stream reads or "
        "publishes it), and the only kind of group a probe may send to",
    )

    @property
    def group_port(self) -> GroupPort:
        return GroupPort(str(self.address), self.port)


class Domain(_Model):
    """A Transit Gateway multicast domain and the groups carried in it."""

    name: Name
    mode: DomainMode = DomainMode.IGMPV2
    auto_accept_shared_associations: bool = Field(
        default=False,
        description="Accept customers' subnet associations without `mcastkit onboard accept` (default off)",
    )
    groups: list[Group] = Field(min_length=1)
    source_cidrs: list[Cidr] = Field(min_length=1, description="CIDRs allowed to send UDP to the groups")
    static_sources: list[Annotated[str, StringConstraints(pattern=ENI_ID_PATTERN)]] = Field(
        default_factory=list, description="ENI ids registered as sources; only for mode: static"
    )
    static_members: list[Annotated[str, StringConstraints(pattern=ENI_ID_PATTERN)]] = Field(
        default_factory=list,
        description="the provider's ENI ids registered as members; only for mode: static",
    )

    @property
    def igmpv2(self) -> bool:
        return self.mode is DomainMode.IGMPV2

    def group(self, name: str) -> Group:
        return next(g for g in self.groups if g.name == name)

    @property
    def probe_groups(self) -> list[Group]:
        return [g for g in self.groups if g.probe]


class NodeSubnet(_Model):
    """A subnet pinned to an AZ. As such, one for EKS nodes' primary interfaces and their pods' VPC
    CNI addresses: no multicast domain, not in the Transit Gateway attachment."""

    cidr: Cidr
    availability_zone: AvailabilityZone

    @field_validator("cidr")
    @classmethod
    def _subnet_size(cls, value: IPv4Network) -> IPv4Network:
        return _sized(value, "subnet", facts.SUBNET_PREFIX_RANGE)


class Subnet(NodeSubnet):
    """A multicast subnet: pinned to an AZ and associated with exactly one domain."""

    domain: Name


class Capacity(_Model):
    """ECS-on-EC2 capacity. Nitro instance types only: others cannot send multicast."""

    instance_type: str = "c6in.large"
    min: int = Field(default=1, ge=0, le=100)
    max: int = Field(default=2, ge=1, le=100)
    network_interfaces: int | None = Field(
        default=None,
        ge=2,
        le=50,
        description="interfaces per instance, for an instance type not in mcastkit's table",
    )
    ami: str | None = Field(
        default=None,
        pattern=r"^ami-[0-9a-f]{8,17}$",
        description="pin the hosts' AMI (default: the latest ECS-optimized AL2023, resolved at each deploy)",
    )

    @property
    def interfaces(self) -> int | None:
        """Network interfaces per host: the table's, or ``network_interfaces``."""
        known = facts.INSTANCE_TYPES.get(self.instance_type)
        return self.network_interfaces or (known[0] if known else None)

    @property
    def task_slots(self) -> int:
        """``awsvpc`` tasks one host runs: an interface each, less the host's primary interface."""
        return (self.interfaces or 1) - 1

    @property
    def architecture(self) -> str:
        return architecture_of(self.instance_type)

    @field_validator("instance_type")
    @classmethod
    def _nitro(cls, value: str) -> str:
        return _nitro_instance_type(value)


class Relay(_Model):
    """The egress relay that re-emits datacenter multicast into a domain (ECS service)."""

    domain: Name
    port: int = Field(
        default=7400,
        ge=1024,
        le=65535,
        description="TCP port of a listening egress (RelayService without connect; the stacks always dial)",
    )
    datacenter_cidrs: list[Cidr] = Field(min_length=1, description="Only these CIDRs may reach the relay")
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
    connect: list[IngressEndpoint] = Field(
        default_factory=list,
        description="Datacenter ingress relays (IPV4:PORT, inside datacenter_cidrs) the egress dials",
    )
    route_via: str | None = Field(
        default=None,
        pattern=r"^(vgw|tgw)-[0-9a-f]{8,17}$",
        description="the virtual private gateway or transit gateway that reaches the datacenter",
    )

    @field_validator("port")
    @classmethod
    def _not_the_metrics_port(cls, value: int) -> int:
        if value == RELAY_METRICS_PORT:
            raise FieldProblem(
                f"{value} is the relay's metrics port", fix="choose another port for the relay link"
            )
        return value

    @field_validator("datacenter_cidrs")
    @classmethod
    def _not_the_internet(cls, values: list[IPv4Network]) -> list[IPv4Network]:
        for index, network in enumerate(values):
            if network.prefixlen < facts.WIDEST_DATACENTER_PREFIX:
                raise FieldProblem(
                    f"{network} is wider than a /{facts.WIDEST_DATACENTER_PREFIX}: it would open the "
                    "relay port to a large part of the internet",
                    fix="list the datacenter's own ranges",
                    path=(index,),
                )
        return values


class Probe(_Model):
    """Sender/receiver probe tasks that prove delivery inside a domain."""

    domain: Name
    group: Name
    receivers: int = Field(default=2, ge=0, le=20)
    #: A proof of delivery, not a load test: a receiver holds a minute of latency samples.
    rate: int = Field(default=100, ge=1, le=100_000, description="messages per second the sender task paces")


class Stream(_Model):
    """A sequenced stream: raw groups of a domain numbered, journaled and published as MoldUDP64 on a
    group of its own, with a replay service customers reach through PrivateLink."""

    name: Name = Field(description="the stream, and its MoldUDP64 session (at most 10 characters)")
    domain: Name
    inputs: list[Name] = Field(min_length=1, description="groups of the domain the sequencer joins")
    output: Name = Field(description="the group of the domain the sequenced stream is published on")
    replay_port: int = Field(
        default=17001,
        ge=1024,
        le=65535,
        description="TCP port of the SoupBinTCP replay service (customers reach it through PrivateLink)",
    )
    retransmit_port: int = Field(
        default=17002,
        ge=1024,
        le=65535,
        description="UDP port of the MoldUDP64 re-request service (inside the provider VPC only)",
    )
    fsync: Fsync = Fsync.INTERVAL
    ttl: int = Field(default=8, ge=1, le=255)
    cpu: int = Field(default=512, ge=256)
    memory_mib: int = Field(default=1024, ge=128)

    @field_validator("name")
    @classmethod
    def _session_length(cls, value: str) -> str:
        if len(value) > STREAM_NAME_MAX:
            raise FieldProblem(
                f"{value!r} has {len(value)} characters; a stream's name is its MoldUDP64 session, "
                f"at most {STREAM_NAME_MAX} ASCII characters",
                fix=f"shorten it to {STREAM_NAME_MAX} characters or fewer",
            )
        return value


class EndpointAccess(StrEnum):
    """Who reaches the cluster's Kubernetes API: the VPC only, or also listed public CIDRs."""

    PRIVATE = "private"
    PUBLIC_AND_PRIVATE = "public-and-private"


class EksProbe(_Model):
    """The probe as Kubernetes workloads on the pods' multicast network."""

    group: Name
    receivers: int = Field(default=1, ge=1, le=20)
    rate: int = Field(default=100, ge=1, le=100_000, description="messages per second the sender pod paces")


class Eks(_Model):
    """An EKS cluster whose pods join a domain's multicast subnets: each node has a second ENI in the
    domain's subnet of its zone, which one pod at a time holds (Multus with host-device)."""

    domain: Name = Field(description="the domain whose multicast subnets the pods join")
    kubernetes_version: Annotated[str, BeforeValidator(_quoted_version)] = Field(
        default=facts.EKS_DEFAULT_KUBERNETES_VERSION
    )
    instance_type: str = "c6in.xlarge"
    nodes_per_zone: int = Field(
        default=2,
        ge=1,
        le=100,
        description="nodes in each zone where the domain has a multicast subnet and a node subnet exists",
    )
    node_subnets: list[NodeSubnet] = Field(
        min_length=1, description="the nodes' and pods' unicast subnets, one per zone, at least two zones"
    )
    endpoint: EndpointAccess = EndpointAccess.PRIVATE
    public_access_cidrs: list[Cidr] = Field(
        default_factory=list, description="only with endpoint: public-and-private"
    )
    admin_cidrs: list[Cidr] = Field(
        default_factory=list,
        description="outside the VPC, where kubectl runs from to reach the private endpoint (HTTPS)",
    )
    admin_roles: list[Annotated[str, StringConstraints(pattern=IAM_ROLE_ARN_PATTERN)]] = Field(
        min_length=1, description="IAM roles given cluster-admin (EKS access entries)"
    )
    max_pods: int | None = Field(
        default=None, ge=2, le=737, description="pods per node, for an instance type not in mcastkit's table"
    )
    ami: str | None = Field(
        default=None,
        pattern=r"^ami-[0-9a-f]{8,17}$",
        description="pin the nodes' AMI (default: the latest EKS-optimized AL2023, resolved at each deploy)",
    )
    probe: EksProbe | None = None

    @field_validator("kubernetes_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if value not in facts.EKS_KUBERNETES_VERSIONS:
            raise FieldProblem(
                f"{value!r} is not a Kubernetes version mcastkit validates its manifests for",
                fix=f"choose one of {', '.join(facts.EKS_KUBERNETES_VERSIONS)} (write it in quotes)",
            )
        return value

    @field_validator("instance_type")
    @classmethod
    def _nitro(cls, value: str) -> str:
        return _nitro_instance_type(value)

    @property
    def pods_per_node(self) -> int | None:
        """The kubelet's max pods: what the VPC CNI can address with every interface but the
        multicast one, ``(interfaces - 1) x (addresses - 1) + 2`` (the primary address of each
        interface is not a pod's; the host-network pods, kube-proxy and aws-node, need none), within
        EKS's recommended ceiling. nodeadm's own figure would count the multicast ENI too."""
        if self.max_pods is not None:
            return self.max_pods
        interfaces = facts.INSTANCE_TYPES.get(self.instance_type)
        addresses = facts.IPV4_PER_INTERFACE_AND_VCPUS.get(self.instance_type)
        if interfaces is None or addresses is None:
            return None
        per_interface, vcpus = addresses
        ceiling = (
            facts.EKS_MAX_PODS_LARGE
            if vcpus >= facts.EKS_MAX_PODS_VCPU_THRESHOLD
            else facts.EKS_MAX_PODS_SMALL
        )
        return min(ceiling, (interfaces[0] - 1) * (per_interface - 1) + 2)

    @property
    def architecture(self) -> str:
        return architecture_of(self.instance_type)


class SharedIds(_Model):
    """Ids of the provider's resources, recorded after `cdk deploy` for customer hand-off."""

    transit_gateway_id: str = Field(pattern=TRANSIT_GATEWAY_ID_PATTERN)
    domain_ids: dict[Name, str] = Field(default_factory=dict)
    share_arns: dict[Name, str] = Field(
        default_factory=dict,
        description="RAM resource share ARN per domain, for the customer's `mcastkit onboard join`",
    )
    endpoint_services: dict[Name, str] = Field(
        default_factory=dict,
        description="PrivateLink endpoint service name per stream, for the customers' interface endpoints",
    )

    @field_validator("endpoint_services")
    @classmethod
    def _endpoint_services(cls, values: dict[str, str]) -> dict[str, str]:
        for name, value in values.items():
            if not ENDPOINT_SERVICE_NAME.fullmatch(value):
                raise FieldProblem(
                    f"{value!r} is not an endpoint service name (com.amazonaws.vpce.<region>.vpce-svc-...)",
                    path=(name,),
                )
        return values

    @field_validator("share_arns")
    @classmethod
    def _share_arns(cls, values: dict[str, str]) -> dict[str, str]:
        for name, value in values.items():
            if not SHARE_ARN.fullmatch(value):
                raise FieldProblem(f"{value!r} is not a RAM resource share ARN", path=(name,))
        return values

    @field_validator("domain_ids")
    @classmethod
    def _domain_ids(cls, values: dict[str, str]) -> dict[str, str]:
        for name, value in values.items():
            if not DOMAIN_ID.fullmatch(value):
                raise FieldProblem(
                    f"{value!r} is not a multicast domain id (tgw-mcast-domain-...)", path=(name,)
                )
        return values


class Region(_Model):
    """Everything mcastkit builds in one AWS region."""

    availability_zones: list[AvailabilityZone] = Field(min_length=1, max_length=6)
    vpc_cidr: Cidr
    subnets: list[Subnet] = Field(min_length=1)
    transit_gateway_asn: int = 64512
    auto_accept_shared_attachments: bool = Field(
        default=False,
        description="Accept customers' VPC attachments without `mcastkit onboard accept` (default off)",
    )
    capacity: Capacity = Field(default_factory=Capacity)
    domains: list[Domain] = Field(min_length=1)
    relay: Relay | None = None
    probe: Probe | None = None
    streams: list[Stream] = Field(default_factory=list)
    eks: Eks | None = None
    shared: SharedIds | None = None

    @field_validator("vpc_cidr")
    @classmethod
    def _vpc_size(cls, value: IPv4Network) -> IPv4Network:
        return _sized(value, "VPC", facts.VPC_PREFIX_RANGE)

    @field_validator("transit_gateway_asn")
    @classmethod
    def _asn(cls, value: int) -> int:
        if not any(low <= value <= high for low, high in facts.PRIVATE_ASNS):
            raise FieldProblem(f"{value} is not a private ASN (64512-65534 or 4200000000-4294967294)")
        return value

    @field_validator("availability_zones")
    @classmethod
    def _azs(cls, values: list[str]) -> list[str]:
        for index, value in enumerate(values):
            if value in values[:index]:
                raise FieldProblem(f"{value} is listed twice", path=(index,))
        return values

    def domain(self, name: str) -> Domain:
        return next(d for d in self.domains if d.name == name)

    def subnets_of(self, domain: str) -> list[Subnet]:
        return [s for s in self.subnets if s.domain == domain]

    def streams_of(self, domain: str) -> list[Stream]:
        return [s for s in self.streams if s.domain == domain]

    def eks_node_zones(self) -> list[str]:
        """Zones where EKS nodes run: a node subnet there and a multicast subnet of the pods'
        domain (a node's multicast ENI is in its own zone), in the order of ``node_subnets``."""
        if self.eks is None:
            return []
        multicast = {s.availability_zone for s in self.subnets_of(self.eks.domain)}
        return [s.availability_zone for s in self.eks.node_subnets if s.availability_zone in multicast]

    def relayed(self, domain: str) -> Domain:
        """``domain`` with the groups a relay may emit to: its feed groups, all but the streams' outputs
        (whose one publisher is their sequencer) and the probe groups (the probe's)."""
        outputs = {s.output for s in self.streams_of(domain)}
        found = self.domain(domain)
        feeds = [g for g in found.groups if g.name not in outputs and not g.probe]
        return found.model_copy(update={"groups": feeds})

    def probe_senders(self, domain: str) -> list[Group]:
        """The probe groups of ``domain`` a probe sender of this region sends to (ECS or EKS)."""
        sent: list[tuple[str, str]] = [(self.probe.domain, self.probe.group)] if self.probe else []
        if self.eks and self.eks.probe:
            sent.append((self.eks.domain, self.eks.probe.group))
        names = {group for name, group in sent if name == domain}
        return [g for g in self.domain(domain).probe_groups if g.name in names]

    @property
    def host_subnets(self) -> list[Subnet]:
        """Where the ECS hosts run: the subnets of the domains the relay, the probe and the streams'
        sequencers serve (an ``awsvpc`` task's interface is in its host's zone, so a host elsewhere
        could run none)."""
        served = {section.domain for section in (self.relay, self.probe) if section is not None}
        served |= {stream.domain for stream in self.streams}
        return [s for s in self.subnets if s.domain in served] or list(self.subnets)


class Entitlement(_Model):
    """The domains a customer may receive in one region."""

    region: str
    domains: list[Name] = Field(min_length=1)


class Customer(_Model):
    """A receiving account (or an Organizations OU) and what it may receive."""

    name: Name
    principal: Annotated[str, BeforeValidator(_unquoted_number)] = Field(
        description="12-digit AWS account id or an Organizations OU ARN"
    )
    entitlements: list[Entitlement] = Field(default_factory=list)

    @field_validator("principal")
    @classmethod
    def _principal(cls, value: str) -> str:
        if ACCOUNT_ID.fullmatch(value) or OU_ARN.fullmatch(value):
            return value
        raise FieldProblem(
            f"{value!r} is neither a 12-digit account id nor an Organizations OU ARN "
            "(arn:aws:organizations::<account>:ou/o-.../ou-...)"
        )

    @property
    def is_account(self) -> bool:
        return bool(ACCOUNT_ID.fullmatch(self.principal))

    @property
    def organization_id(self) -> str | None:
        match = OU_ARN.fullmatch(self.principal)
        return match["org"] if match else None

    def domains_in(self, region: str) -> list[str]:
        return [d for e in self.entitlements if e.region == region for d in e.domains]


class Quotas(_Model):
    """Transit Gateway and VPC quotas the config is checked against (raise them if AWS raised yours)."""

    domains_per_transit_gateway: int = Field(default=facts.DOMAINS_PER_TRANSIT_GATEWAY, ge=1)
    groups_per_transit_gateway: int = Field(default=facts.GROUPS_PER_TRANSIT_GATEWAY, ge=1)
    customers_per_domain: int = Field(default=facts.CUSTOMERS_PER_DOMAIN, ge=1)
    sources_per_group: int = Field(default=facts.SOURCES_PER_GROUP, ge=1)
    security_group_rules: int = Field(default=facts.SECURITY_GROUP_RULES, ge=1)
    network_acl_rules: int = Field(default=facts.NETWORK_ACL_RULES, ge=1)


class OverlayHost(_Model):
    """One host of an overlay: where its peers reach it, and its address on the overlay."""

    name: Name
    underlay: Annotated[IPv4Address, PlainSerializer(str, return_type=str)] = Field(
        description="the address the other hosts reach this one at (its VPC or datacenter address)"
    )
    address: Annotated[IPv4Address, PlainSerializer(str, return_type=str)] = Field(
        description="its address on the overlay, inside the overlay's cidr"
    )
    public_key: Annotated[str, StringConstraints(pattern=WIREGUARD_KEY_PATTERN)] | None = Field(
        default=None,
        description="its WireGuard public key (`mcastkit overlay key` prints it on the host); needed "
        "on every host of an overlay with wireguard",
    )
    receives: list[Annotated[IPv4Address, PlainSerializer(str, return_type=str)]] | None = Field(
        default=None,
        description="the overlay's groups this host receives (default: all of them; [] for a host that "
        "only sends): a group's frames are replicated only to the hosts that receive it",
    )

    def receives_group(self, group: IPv4Address) -> bool:
        return self.receives is None or group in self.receives


class OverlayWireGuard(_Model):
    """The overlay's VXLAN carried inside WireGuard: encrypted and authenticated between its hosts."""

    port: int = Field(default=51820, ge=1, le=65535, description="UDP port of WireGuard on every host")
    cidr: Cidr = Field(
        description="the tunnel subnet, as long a prefix as the overlay's cidr: a host's tunnel address "
        "is its overlay address moved into it (10.99.0.5 in 10.99.0.0/24 is 10.98.0.5 in 10.98.0.0/24)"
    )


class Overlay(_Model):
    """A VXLAN overlay with head-end replication: every host sends each multicast frame to each
    other host by unicast UDP, so groups reach hosts where no Transit Gateway domain does."""

    name: Annotated[str, StringConstraints(pattern=OVERLAY_NAME_PATTERN)] = Field(
        description="at most 11 characters: the device is mck-<name> (Linux allows 15)"
    )
    vni: int = Field(ge=1, le=16_777_215, description="VXLAN network identifier")
    port: int = Field(default=4789, ge=1, le=65535, description="UDP port of the VXLAN tunnel")
    cidr: Cidr = Field(description="the overlay's subnet, one address per host")
    mtu: int = Field(
        default=1450,
        ge=576,
        le=8951,
        description="the overlay device's MTU on every host: 1450 fits any path that carries 1500 "
        "(the internet, VPN, Direct Connect by default); up to 8450 through a Transit Gateway or "
        "VPC peering, 8951 inside one VPC",
    )
    groups: list[GroupPortField] = Field(min_length=1, description="GROUP:PORT the overlay carries")
    hosts: list[OverlayHost] = Field(min_length=2)
    wireguard: OverlayWireGuard | None = Field(
        default=None, description="carry the overlay inside WireGuard (encrypted); default: VXLAN in clear"
    )

    @property
    def tunnel_device(self) -> str:
        """The WireGuard device, with ``wireguard``."""
        return f"mcw-{self.name}"

    def vxlan_endpoint(self, host: OverlayHost) -> IPv4Address:
        """Where the host's VXLAN packets go: its tunnel address with ``wireguard``, else its underlay."""
        if self.wireguard is None:
            return host.underlay
        offset = int(host.address) - int(self.cidr.network_address)
        return self.wireguard.cidr.network_address + offset

    @property
    def underlay_port(self) -> int:
        """The UDP port between the hosts' underlay addresses: WireGuard's, or VXLAN's."""
        return self.port if self.wireguard is None else self.wireguard.port

    @property
    def device(self) -> str:
        return f"mck-{self.name}"

    def group_addresses(self) -> list[IPv4Address]:
        """The overlay's group addresses, each once, in order (two ports of one group are one)."""
        return list(dict.fromkeys(IPv4Address(g.group) for g in self.groups))

    def host(self, name: str) -> OverlayHost:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)


class OverlayFile(_Model):
    """A file of overlays only, for hosts outside the config's regions (``mcastkit overlay --file``)."""

    overlays: list[Overlay] = Field(min_length=1)


class Alarms(_Model):
    """When the compute stack's alarms fire: each judges one-minute datapoints."""

    relay_down_minutes: int = Field(
        default=2, ge=1, le=60, description="minutes in a row with no relay link up (or no report)"
    )
    relay_gaps: int = Field(
        default=0, ge=0, description="datagrams lost on the relay link tolerated in 5 minutes"
    )
    probe_loss_percent: float = Field(
        default=0.1, ge=0, lt=100, description="probe loss a receiver may see in a minute, in percent"
    )
    probe_silent_minutes: int = Field(
        default=5, ge=1, le=60, description="minutes in a row a probe receiver hears nothing (or is gone)"
    )
    probe_sender_restarts: int = Field(
        default=2, ge=0, description="times the probe sender may start over in 15 minutes (a crash loop)"
    )
    stream_send_errors: int = Field(
        default=0, ge=0, description="packets a sequencer may fail to send in 5 minutes"
    )
    stream_silent_minutes: int = Field(
        default=3,
        ge=1,
        le=60,
        description="minutes in a row a sequencer publishes nothing, heartbeats included",
    )
    tasks_below_desired_minutes: int = Field(
        default=5, ge=1, le=60, description="minutes in a row a service runs fewer tasks than it should"
    )
    hosts_missing_minutes: int = Field(
        default=10,
        ge=1,
        le=60,
        description="minutes in a row fewer hosts are in service than capacity.min, or tasks wait for "
        "hosts that do not register",
    )


class Monitoring(_Model):
    """Who hears of an alarm (one encrypted SNS topic per region) and when alarms fire."""

    email: list[Annotated[str, StringConstraints(pattern=EMAIL_PATTERN)]] = Field(
        default_factory=list, description="addresses subscribed to the alarm topic (each confirms once)"
    )
    https: list[Annotated[str, StringConstraints(pattern=HTTPS_URL_PATTERN)]] = Field(
        default_factory=list, description="HTTPS endpoints subscribed to the alarm topic (an incident tool)"
    )
    alarms: Alarms = Field(default_factory=Alarms)


class Config(_Model):
    """The whole estate: provider, regions, customers. Build it with :func:`load_config`, which
    also runs the cross-checks; ``Config.model_validate`` alone checks each field only."""

    project: Name
    provider_account: AccountId
    organization_id: str | None = Field(
        default=None, pattern=ORGANIZATION_ID_PATTERN, description="the provider's AWS Organization"
    )
    allowed_regions: list[str] = Field(default_factory=lambda: list(facts.MULTICAST_REGIONS))
    quotas: Quotas = Field(default_factory=Quotas)
    regions: dict[str, Region] = Field(min_length=1)
    customers: list[Customer] = Field(default_factory=list)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    overlays: list[Overlay] = Field(default_factory=list)

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
        return stack_name(self.project, region, kind)
