"""The stateful network stack: VPC, Transit Gateway, multicast domains, member rules."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from mcastkit.config import Config
from mcastkit.config.names import TRANSIT_GATEWAY_ID_KEY, domain_key, export_name, pascal, stream_key
from mcastkit.config.rules import member_acl_room
from mcastkit.constructs.datacenter_route import DatacenterRoute
from mcastkit.constructs.member_rules import MemberRules
from mcastkit.constructs.multicast_domain import MulticastDomain
from mcastkit.constructs.overlay_peers import OverlayPeers
from mcastkit.constructs.replay_endpoint import ReplayEndpoint
from mcastkit.constructs.stream_acl import StreamAcl
from mcastkit.constructs.stream_journal import StreamJournal
from mcastkit.constructs.transit_gateway import MulticastTransitGateway
from mcastkit.constructs.vpc import DEFAULT_INTERFACE_ENDPOINTS, EKS_INTERFACE_ENDPOINTS, MulticastVpc
from mcastkit.stacks.base import RegionStack

#: Logical ids of the stateful resources. Changing one replaces the resource (a new
#: Transit Gateway or domain cuts every customer off), so tests pin them.
VPC_LOGICAL_ID = "Vpc"
TRANSIT_GATEWAY_LOGICAL_ID = "TransitGateway"
ATTACHMENT_LOGICAL_ID = "TransitGatewayAttachment"


def domain_logical_id(domain: str) -> str:
    """``market-data`` -> ``MulticastDomainMarketData``."""
    return f"MulticastDomain{pascal(domain)}"


def _pin(construct: Construct, logical_id: str) -> None:
    """Give an L2 construct's CloudFormation resource a fixed logical id."""
    child = construct.node.default_child
    if not isinstance(child, cdk.CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource to pin")
    child.override_logical_id(logical_id)


class NetworkStack(RegionStack):
    """VPC, multicast Transit Gateway and attachment, one domain per configured domain,
    the members' security group and network ACL, encrypted flow logs; per stream, its journal and
    its replay endpoint service (what outlives the sequencer's tasks, and what customers' endpoints
    are connected to).

    Termination protection is on: deleting this stack deletes the Transit Gateway every
    customer is attached to.

    Attributes:
        network: the :class:`MulticastVpc`.
        transit_gateway: the :class:`MulticastTransitGateway`.
        domains: :class:`MulticastDomain` by configured name.
        member_rules: the :class:`MemberRules` of the multicast subnets.
        journals, replay_endpoints: :class:`StreamJournal` and :class:`ReplayEndpoint` by stream name.
        stream_acl: the :class:`StreamAcl`, or ``None`` without streams.
        overlay_peers: :class:`OverlayPeers` by overlay name, for overlays with a host in the VPC.
    """

    def __init__(self, scope: Construct, id_: str, *, config: Config, region: str, **kwargs: Any) -> None:
        super().__init__(
            scope,
            id_,
            description=f"mcastkit {config.project} {region}: VPC, multicast transit gateway and domains",
            termination_protection=True,
            availability_zones=config.regions[region].availability_zones,
            **kwargs,
        )
        settings = config.regions[region]
        self.network = MulticastVpc(
            self,
            "Network",
            cidr=settings.vpc_cidr,
            availability_zones=settings.availability_zones,
            subnets=settings.subnets,
            node_subnets=settings.eks.node_subnets if settings.eks else (),
            interface_endpoints=(
                (*DEFAULT_INTERFACE_ENDPOINTS, *EKS_INTERFACE_ENDPOINTS)
                if settings.eks
                else DEFAULT_INTERFACE_ENDPOINTS
            ),
        )
        _pin(self.network.vpc, VPC_LOGICAL_ID)
        subnet_of = dict(zip((s.cidr for s in settings.subnets), self.network.subnets, strict=True))

        # The config holds one multicast subnet per zone (see Config), so every subnet is in
        # the VPC's single attachment and each domain association names an attachment subnet.
        self.transit_gateway = MulticastTransitGateway(
            self,
            "Gateway",
            vpc=self.network.vpc,
            attachment_subnets=self.network.subnets,
            amazon_side_asn=settings.transit_gateway_asn,
            auto_accept_shared_attachments=settings.auto_accept_shared_attachments,
            description=f"{config.project} {region} multicast",
        )
        self.transit_gateway.transit_gateway.override_logical_id(TRANSIT_GATEWAY_LOGICAL_ID)
        self.transit_gateway.attachment.override_logical_id(ATTACHMENT_LOGICAL_ID)

        self.domains: dict[str, MulticastDomain] = {}
        for domain in settings.domains:
            construct = MulticastDomain(
                self,
                f"Domain{pascal(domain.name)}",
                transit_gateway_id=self.transit_gateway.transit_gateway_id,
                attachment_id=self.transit_gateway.attachment_id,
                domain=domain,
                subnets=[subnet_of[s.cidr] for s in settings.subnets_of(domain.name)],
            )
            construct.multicast_domain.override_logical_id(domain_logical_id(domain.name))
            self.domains[domain.name] = construct

        self.datacenter_route: DatacenterRoute | None = None
        if settings.relay and settings.relay.route_via:
            self.datacenter_route = DatacenterRoute(
                self,
                "DatacenterRoute",
                vpc=self.network.vpc,
                subnets=[subnet_of[s.cidr] for s in settings.subnets_of(settings.relay.domain)],
                datacenter_cidrs=settings.relay.datacenter_cidrs,
                gateway_id=settings.relay.route_via,
            )

        self.member_rules = MemberRules(
            self,
            "Members",
            vpc=self.network.vpc,
            subnets=self.network.subnets,
            domains=settings.domains,
            serve_https_to=settings.vpc_cidr,
            acl_limit=member_acl_room(config.quotas, settings),
        )
        self.journals: dict[str, StreamJournal] = {}
        self.replay_endpoints: dict[str, ReplayEndpoint] = {}
        for stream in settings.streams:
            self.journals[stream.name] = StreamJournal(
                self,
                f"Journal{pascal(stream.name)}",
                vpc=self.network.vpc,
                subnets=[subnet_of[s.cidr] for s in settings.subnets_of(stream.domain)],
                stream=stream.name,
            )
            self.replay_endpoints[stream.name] = ReplayEndpoint(
                self,
                f"ReplayEndpoint{pascal(stream.name)}",
                vpc=self.network.vpc,
                # Every zone of the VPC: customers may put their endpoints in any of them.
                subnets=self.network.endpoint_subnets,
                vpc_cidr=settings.vpc_cidr,
                stream=stream,
            )
        # Overlays with a host in this VPC: the security group their hosts here wear.
        self.overlay_peers = {
            overlay.name: OverlayPeers(
                self, f"Overlay{pascal(overlay.name)}", vpc=self.network.vpc, overlay=overlay
            )
            for overlay in config.overlays
            if any(host.underlay in settings.vpc_cidr for host in overlay.hosts)
        }
        self.stream_acl: StreamAcl | None = None
        if settings.streams:
            self.stream_acl = StreamAcl(
                self,
                "StreamAcl",
                network_acl=self.member_rules.network_acl,
                streams=settings.streams,
                vpc_cidr=settings.vpc_cidr,
            )
        self._outputs()

    def export_name(self, output_id: str) -> str:
        """The stable export name of one of this stack's outputs (``TransitGatewayArn``...)."""
        return export_name(self.stack_name, output_id)

    def _outputs(self) -> None:
        """Ids customers and the onboarding commands need, under stable export names.

        The sharing stack imports these by name, so the outputs of this (stateful) stack
        never change when customers come and go.
        """

        def output(id_: str, value: str, description: str) -> None:
            cdk.CfnOutput(self, id_, value=value, description=description, export_name=self.export_name(id_))

        output(
            TRANSIT_GATEWAY_ID_KEY, self.transit_gateway.transit_gateway_id, "multicast transit gateway id"
        )
        output("TransitGatewayArn", self.transit_gateway.transit_gateway_arn, "multicast transit gateway ARN")
        output("VpcId", self.network.vpc.vpc_id, "provider VPC id")
        for name, domain in self.domains.items():
            output(domain_key(name), domain.domain_id, f"multicast domain {name} id")
            output(domain_key(name, "Arn"), domain.domain_arn, f"multicast domain {name} ARN")
        for name, peers in self.overlay_peers.items():
            output(
                f"Overlay{pascal(name)}SecurityGroupId",
                peers.security_group.security_group_id,
                f"security group for the hosts of overlay {name} in this VPC",
            )
        for name, endpoint in self.replay_endpoints.items():
            output(stream_key(name, "Id"), endpoint.service_id, f"replay endpoint service of stream {name}")
            output(
                stream_key(name, "Name"),
                endpoint.service_name,
                f"replay endpoint service of stream {name}: record it under "
                "regions.<region>.shared.endpoint_services for the customers' hand-off kits",
            )
