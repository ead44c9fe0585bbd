"""The stack a customer deploys in its own account to receive the provider's multicast.

It attaches the customer's VPC to the provider's shared Transit Gateway, associates each
receiver subnet with the one domain it is for, and gives receivers the security group and
network ACL they need (:class:`mcastkit.constructs.MemberRules`). Everything that differs
between customers' accounts (VPC, subnets) and everything the provider creates (TGW and
domain ids) is a CloudFormation parameter, so the template synthesizes without
credentials or lookups and is handed over as a file.

A subnet can belong to one multicast domain only, and a VPC attachment takes at most one
subnet per availability zone: each entitled domain gets its own receiver subnets, and all
of them must be in different availability zones.

The attachment and the associations stay ``pendingAcceptance`` until the provider runs
``mcastkit onboard accept`` (unless auto-accept is on); CloudFormation waits for them.

For each sequenced stream of an entitled domain, the stack also makes an interface VPC endpoint
to the provider's replay endpoint service (PrivateLink): the one unicast path a customer has back
to the provider, for SoupBinTCP replay. The endpoint service admits exactly the entitled accounts
and needs no acceptance, so the endpoint does not wait for the provider.
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from mcastkit.config import Capacity, Domain, Stream
from mcastkit.config.names import (
    DOMAIN_ID_PATTERN,
    ENDPOINT_SERVICE_NAME_PATTERN,
    TRANSIT_GATEWAY_ID_KEY,
    TRANSIT_GATEWAY_ID_PATTERN,
    domain_key,
    endpoint_subnets_parameter,
    pascal,
    stream_key,
    subnet_parameter,
)
from mcastkit.constructs.cluster import Igmpv2Cluster
from mcastkit.constructs.member_rules import MemberRules

CIDR_PATTERN = r"^(\d{1,3}\.){3}\d{1,3}/\d{1,2}$"
#: Network ACL protocol number meaning every protocol.
ALL_PROTOCOLS = -1
#: A VPC attachment takes one subnet per availability zone; no region has more than six.
MAX_RECEIVER_SUBNETS = 6


ATTACHMENT_LOGICAL_ID = "TransitGatewayAttachment"


def association_logical_id(domain: str, index: int) -> str:
    return f"{pascal(domain)}Association{index + 1}"


#: Receiver subnets per domain unless the kit asks for more: the same whatever the number of
#: domains, so a customer entitled to one more domain keeps its subnets in their association
#: slots (associations are create-only: a subnet moved to another slot is replaced).
DEFAULT_SUBNETS_PER_DOMAIN = 1


class SharedDomainMembership(Construct):
    """A VPC attachment to a shared TGW and one domain association per receiver subnet.

    Args:
        transit_gateway_id: the provider's TGW id (a token is fine).
        vpc_id: the customer's VPC id.
        subnets_by_domain: domain name -> (domain id, receiver subnet ids); no subnet may
            appear under two domains.

    Attributes:
        attachment: the ``AWS::EC2::TransitGatewayAttachment`` (its ``SubnetIds`` update in place,
            so a customer entitled to one more domain keeps its attachment).
        associations: domain name -> its ``AWS::EC2::TransitGatewayMulticastDomainAssociation`` list.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        transit_gateway_id: str,
        vpc_id: str,
        subnets_by_domain: dict[str, tuple[str, list[str]]],
    ) -> None:
        super().__init__(scope, id_)
        if not subnets_by_domain or not all(s for _, s in subnets_by_domain.values()):
            raise ValueError("SharedDomainMembership needs at least one subnet per domain")
        all_subnets = [s for _, subnets in subnets_by_domain.values() for s in subnets]
        self.attachment = ec2.CfnTransitGatewayAttachment(
            self,
            "TransitGatewayAttachment",
            transit_gateway_id=transit_gateway_id,
            vpc_id=vpc_id,
            subnet_ids=all_subnets,
            # Explicit: the handler's create and update default DnsSupport differently.
            options={"DnsSupport": "disable", "Ipv6Support": "disable", "ApplianceModeSupport": "disable"},
            tags=[cdk.CfnTag(key="Name", value=f"{cdk.Aws.STACK_NAME}-multicast")],
        )
        self.associations: dict[str, list[ec2.CfnTransitGatewayMulticastDomainAssociation]] = {}
        for name, (domain_id, subnets) in subnets_by_domain.items():
            self.associations[name] = [
                ec2.CfnTransitGatewayMulticastDomainAssociation(
                    self,
                    f"{pascal(name)}Association{index + 1}",
                    transit_gateway_multicast_domain_id=domain_id,
                    transit_gateway_attachment_id=self.attachment.attr_id,
                    subnet_id=subnet,
                )
                for index, subnet in enumerate(subnets)
            ]


def replay_endpoint_logical_id(stream: str) -> str:
    return f"{pascal(stream)}ReplayEndpoint"


class StreamReplayEndpoint(Construct):
    """An interface VPC endpoint to the provider's replay endpoint service of one stream.

    Its security group admits the replay port from ``receivers`` only, and ``receivers`` gains the
    matching egress rule (the receivers' security group has no other TCP egress than HTTPS). No
    private DNS: the service has no private name; receivers dial the endpoint's own DNS name
    (:attr:`dns_name`). An endpoint can be created only in availability zones the provider's load
    balancer covers, compared by AZ id (PrivateLink guide, "Create an endpoint service"): outside
    them the create fails naming the subnet's zone.

    Args:
        vpc: the customer's VPC (imported); vpc_id: its id.
        service_name: the provider's endpoint service name (``com.amazonaws.vpce...``; a token is fine).
        subnet_ids: the endpoint's subnets, one per zone (a token of a list parameter is fine).
        stream: the stream (its name and replay port).
        receivers: the receivers' security group.

    Attributes:
        security_group, endpoint (the ``AWS::EC2::VPCEndpoint``), dns_name.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        vpc: ec2.IVpc,
        vpc_id: str,
        service_name: str,
        subnet_ids: list[str],
        stream: Stream,
        receivers: ec2.ISecurityGroup,
    ) -> None:
        super().__init__(scope, id_)
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            # No port in the description: it is create-only, and a port change must not replace the group.
            description=f"Replay endpoint of stream {stream.name}: the replay port from the receivers",
            allow_all_outbound=False,
        )
        receivers.connections.allow_to(
            self.security_group,
            ec2.Port.tcp(stream.replay_port),
            f"replay of stream {stream.name} through PrivateLink",
        )
        self.endpoint = ec2.CfnVPCEndpoint(
            self,
            "Endpoint",
            vpc_endpoint_type="Interface",
            service_name=service_name,
            vpc_id=vpc_id,
            subnet_ids=subnet_ids,
            security_group_ids=[self.security_group.security_group_id],
            private_dns_enabled=False,
        )
        # DnsEntries are "hosted-zone-id:name"; the first is the regional name, in every zone.
        first = cdk.Fn.select(0, self.endpoint.attr_dns_entries)
        self.dns_name: str = cdk.Fn.select(1, cdk.Fn.split(":", first))


class CustomerStack(cdk.Stack):
    """A customer's side of the provider's multicast in one region.

    Args:
        domains: the domains the customer is entitled to in this region (from the config).
        subnets_per_domain: receiver subnets per domain (default 1; every subnet needs its own
            availability zone). Keep it the same for every kit of a customer.
        transit_gateway_id, domain_ids: default values for the parameters (the provider's
            recorded ids; default: none, the deployer must pass them).
        cluster: capacity of an optional IGMPv2 ECS cluster in the receiver subnets
            (:class:`mcastkit.constructs.Igmpv2Cluster`; default ``None``: no cluster).
        streams: the sequenced streams of the entitled domains (default none): an interface endpoint
            to each one's replay service.
        endpoint_service_names: default values of the endpoint service parameters (the provider's
            recorded names; default: none, the deployer must pass them).

    Attributes:
        membership: the attachment and associations (:class:`SharedDomainMembership`).
        member_rules: the receivers' security group and network ACL (:class:`MemberRules`).
        cluster: the :class:`Igmpv2Cluster`, or ``None``.
        replay_endpoints: :class:`StreamReplayEndpoint` by stream name.
        parameters: parameter name -> ``CfnParameter``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        domains: Sequence[Domain],
        subnets_per_domain: int | None = None,
        transit_gateway_id: str | None = None,
        domain_ids: dict[str, str] | None = None,
        cluster: Capacity | None = None,
        streams: Sequence[Stream] = (),
        endpoint_service_names: dict[str, str] | None = None,
        **kwargs: object,
    ) -> None:
        kwargs.setdefault("synthesizer", cdk.DefaultStackSynthesizer(generate_bootstrap_version_rule=False))
        kwargs.setdefault(
            "description", "mcastkit customer stack: receive the provider's shared Transit Gateway multicast"
        )
        super().__init__(scope, id_, **kwargs)  # type: ignore[arg-type]
        if not domains:
            raise ValueError("CustomerStack needs at least one entitled domain")
        strays = [s.name for s in streams if s.domain not in {d.name for d in domains}]
        if strays:
            raise ValueError(f"streams {strays} are not of an entitled domain")
        per_domain = subnets_per_domain or DEFAULT_SUBNETS_PER_DOMAIN
        if not 1 <= per_domain * len(domains) <= MAX_RECEIVER_SUBNETS:
            raise ValueError(
                f"{per_domain} receiver subnet(s) per domain for {len(domains)} domain(s): the attachment "
                f"takes one subnet per availability zone, so 1 to {MAX_RECEIVER_SUBNETS} in all"
            )
        domain_ids = domain_ids or {}
        self.parameters: dict[str, cdk.CfnParameter] = {}

        vpc_id = self._parameter(
            "VpcId", type="AWS::EC2::VPC::Id", description="Your VPC that holds the receiver subnets"
        )
        tgw_id = self._parameter(
            TRANSIT_GATEWAY_ID_KEY,
            default=transit_gateway_id,
            allowed_pattern=TRANSIT_GATEWAY_ID_PATTERN,
            constraint_description="a transit gateway id such as tgw-0123456789abcdef0",
            description="The provider's shared transit gateway (tgw-...)",
        )
        subnets_by_domain: dict[str, tuple[str, list[str]]] = {}
        for domain in domains:
            domain_id = self._parameter(
                domain_key(domain.name),
                default=domain_ids.get(domain.name),
                allowed_pattern=DOMAIN_ID_PATTERN,
                constraint_description="a multicast domain id such as tgw-mcast-domain-0123456789abcdef0",
                description=f"The provider's multicast domain {domain.name} (tgw-mcast-domain-...)",
            )
            subnets = [
                self._parameter(
                    subnet_parameter(domain.name, i),
                    type="AWS::EC2::Subnet::Id",
                    description=f"Receiver subnet {i + 1} for {domain.name}: only {domain.name} receivers, "
                    "in an availability zone no other receiver subnet uses",
                )
                for i in range(per_domain)
            ]
            subnets_by_domain[domain.name] = (domain_id, subnets)

        self.membership = SharedDomainMembership(
            self,
            "SharedDomainMembership",
            transit_gateway_id=tgw_id,
            vpc_id=vpc_id,
            subnets_by_domain=subnets_by_domain,
        )
        # Stable logical ids: a regenerated kit must update, not replace, a customer's attachment.
        self.membership.attachment.override_logical_id(ATTACHMENT_LOGICAL_ID)
        for name, associations in self.membership.associations.items():
            for index, association in enumerate(associations):
                association.override_logical_id(association_logical_id(name, index))
        # Imported by id: no lookup at synth time. The AZ list is only needed by CDK for
        # subnet selection, which is explicit here.
        vpc = ec2.Vpc.from_vpc_attributes(self, "Vpc", vpc_id=vpc_id, availability_zones=cdk.Fn.get_azs())
        receiver_subnets = [
            ec2.Subnet.from_subnet_id(self, f"ReceiverSubnet{i + 1}", subnet)
            for i, subnet in enumerate(s for _, subnets in subnets_by_domain.values() for s in subnets)
        ]
        self.member_rules = MemberRules(
            self, "ReceiverRules", vpc=vpc, subnets=receiver_subnets, domains=list(domains)
        )
        # MemberRules gives the receiver subnets their own network ACL; without these two
        # entries receivers could not talk to anything else in the customer's VPC.
        vpc_cidr = self._parameter(
            "VpcCidr",
            allowed_pattern=CIDR_PATTERN,
            constraint_description="an IPv4 CIDR block such as 10.0.0.0/16",
            description="Your VPC's CIDR: receivers keep all traffic with it (network ACL)",
        )
        for egress in (False, True):
            self.member_rules.allow(egress=egress, protocol=ALL_PROTOCOLS, cidr=vpc_cidr)
        self.cluster = None
        if cluster is not None:
            self.cluster = Igmpv2Cluster(
                self,
                "ReceiverCluster",
                vpc=vpc,
                subnets=receiver_subnets,
                security_group=self.member_rules.security_group,
                instance_type=cluster.instance_type,
                architecture=cluster.architecture,
                ami=cluster.ami,
                min_capacity=cluster.min,
                max_capacity=cluster.max,
            )
            cdk.CfnOutput(self, "ReceiverClusterName", value=self.cluster.cluster.cluster_name)
        self.replay_endpoints: dict[str, StreamReplayEndpoint] = {}
        for stream in streams:
            self._replay_endpoint(stream, vpc, vpc_id, (endpoint_service_names or {}).get(stream.name))
        cdk.CfnOutput(self, "TransitGatewayAttachmentId", value=self.membership.attachment.attr_id)
        cdk.CfnOutput(
            self,
            "ReceiverSecurityGroupId",
            value=self.member_rules.security_group.security_group_id,
            description="Attach to receiver instances/tasks",
        )

    def _replay_endpoint(self, stream: Stream, vpc: ec2.IVpc, vpc_id: str, service_name: str | None) -> None:
        service = self._parameter(
            stream_key(stream.name, "Name"),
            default=service_name,
            allowed_pattern=ENDPOINT_SERVICE_NAME_PATTERN,
            constraint_description="an endpoint service name such as "
            "com.amazonaws.vpce.eu-west-2.vpce-svc-0123456789abcdef0",
            description=f"The provider's replay endpoint service of stream {stream.name}",
        )
        subnets_name = endpoint_subnets_parameter(stream.name)
        self.parameters[subnets_name] = cdk.CfnParameter(
            self,
            subnets_name,
            type="List<AWS::EC2::Subnet::Id>",
            description=f"Subnets of the replay endpoint of stream {stream.name}, one per availability zone, "
            "in zones the provider's endpoint service offers (aws ec2 describe-vpc-endpoint-services)",
        )
        endpoint = StreamReplayEndpoint(
            self,
            f"{pascal(stream.name)}ReplayEndpoint",
            vpc=vpc,
            vpc_id=vpc_id,
            service_name=service,
            subnet_ids=self.parameters[subnets_name].value_as_list,
            stream=stream,
            receivers=self.member_rules.security_group,
        )
        # Stable: the endpoint's service name is create-only, so a new logical id would make a new one.
        endpoint.endpoint.override_logical_id(replay_endpoint_logical_id(stream.name))
        self.replay_endpoints[stream.name] = endpoint
        cdk.CfnOutput(
            self,
            f"{pascal(stream.name)}Replay",
            value=cdk.Fn.join(":", [endpoint.dns_name, str(stream.replay_port)]),
            description=f"Replay of stream {stream.name}: mcastkit stream recv ... --replay <this>",
        )

    def _parameter(self, name: str, **props: object) -> str:
        if props.get("default") is None:
            props.pop("default", None)
        props.setdefault("type", "String")
        self.parameters[name] = cdk.CfnParameter(self, name, **props)  # type: ignore[arg-type]
        return self.parameters[name].value_as_string
