"""Security group and network ACL for multicast members, generated from the domains' groups."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network

from aws_cdk import Acknowledgment, Validations
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from mcastkit.config import Domain
from mcastkit.config.rules import (
    ALL_ROUTERS_CIDR,
    FIRST_RULE_NUMBER,
    NACL_RULES_PER_DIRECTION,
    QUERIER_CIDR,
    RULE_NUMBER_STEP,
    AclRule,
    acl_plan,
    port_ranges,
)


class MemberRules(Construct):
    """What a multicast member's ENI needs: a security group and a network ACL on its subnets.

    Both are generated from the domains' groups (AWS Transit Gateway multicast rules):

    * IGMP (IP protocol 2) in from ``0.0.0.0/32``, the Transit Gateway's querier;
    * UDP in from each domain's ``source_cidrs`` to its group ports;
    * IGMP out to ``224.0.0.2/32`` (LEAVE) and to the groups (JOIN/reports);
    * UDP out to the groups (members that also send).

    With ``https_egress`` (the default) members may also open HTTPS connections (ECS
    agent, ECR, CloudWatch Logs through VPC endpoints; ECR image layers through the S3
    gateway endpoint, whose public address ranges cannot be named without a lookup),
    and the ACL lets the stateless return traffic back in on ephemeral ports. With
    ``serve_https_to`` the ACL also admits HTTPS from that CIDR to interface endpoints
    placed in these subnets.

    Security group rules are exact (one per group and port); network ACL entries are
    coarser (see :func:`acl_plan`) because ACLs hold 20 rules per direction by default.

    Args:
        vpc: the VPC of the member subnets.
        subnets: the multicast subnets the network ACL is associated with.
        domains: the multicast domains whose groups members join or send to.
        https_egress: allow outbound HTTPS (default ``True``).
        serve_https_to: CIDR allowed to reach HTTPS in these subnets (default ``None``:
            no inbound HTTPS).
        acl_limit: default 20 (the ACL quota); entries per direction the members' rules may
            take, less when other entries share the ACL (the relay's): past it, domains merge.

    Attributes:
        security_group: the members security group (no default egress).
        network_acl: the network ACL associated with ``subnets``.
        inbound_rules, outbound_rules: the ACL entries created, in rule-number order
            (rule numbers 100, 110, ...; :meth:`allow` appends more).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        vpc: ec2.IVpc,
        subnets: Sequence[ec2.ISubnet],
        domains: Sequence[Domain],
        https_egress: bool = True,
        serve_https_to: IPv4Network | None = None,
        acl_limit: int = NACL_RULES_PER_DIRECTION,
    ) -> None:
        super().__init__(scope, id_)
        if not domains:
            raise ValueError("MemberRules needs at least one domain")
        if not subnets:
            raise ValueError("MemberRules needs at least one subnet")
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="Multicast members: IGMP with the Transit Gateway, UDP from sources to groups",
            allow_all_outbound=False,
        )
        self._add_security_group_rules(domains, https_egress=https_egress)
        self.network_acl = ec2.NetworkAcl(
            self, "NetworkAcl", vpc=vpc, subnet_selection=ec2.SubnetSelection(subnets=list(subnets))
        )
        self.inbound_rules, self.outbound_rules = acl_plan(
            domains, https_egress=https_egress, serve_https_to=serve_https_to, limit=acl_limit
        )
        self._next_rule_number = {False: FIRST_RULE_NUMBER, True: FIRST_RULE_NUMBER}
        for rule in [*self.inbound_rules, *self.outbound_rules]:
            self._add_acl_entry(rule)
        Validations.of(self).acknowledge(
            Acknowledgment(
                id="AwsSolutions-VPC3",
                reason="AWS requires members' subnets to allow IGMP and the groups' UDP in their network "
                "ACLs as in their security groups; these entries are generated from the config, not "
                "hand-kept, and every other inbound or outbound packet is denied.",
            )
        )

    def _add_security_group_rules(self, domains: Sequence[Domain], *, https_egress: bool) -> None:
        sg = self.security_group
        igmp = ec2.Port(protocol=ec2.Protocol.IGMP, string_representation="IGMP")
        sg.add_ingress_rule(ec2.Peer.ipv4(QUERIER_CIDR), igmp, "IGMP queries from the Transit Gateway")
        sg.add_egress_rule(ec2.Peer.ipv4(ALL_ROUTERS_CIDR), igmp, "IGMP leave to all routers")
        for domain in domains:
            for cidr in domain.source_cidrs:
                for first, last in port_ranges(g.port for g in domain.groups):
                    sg.add_ingress_rule(
                        ec2.Peer.ipv4(str(cidr)),
                        ec2.Port.udp_range(first, last),
                        f"{domain.name}: multicast from senders",
                    )
            for group in domain.groups:
                peer = ec2.Peer.ipv4(f"{group.address}/32")
                sg.add_egress_rule(peer, igmp, f"{domain.name}/{group.name}: IGMP join")
                sg.add_egress_rule(peer, ec2.Port.udp(group.port), f"{domain.name}/{group.name}: send")
        if https_egress:
            sg.add_egress_rule(
                ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to VPC endpoints and the S3 gateway endpoint"
            )

    def allow(self, *, egress: bool, protocol: int, cidr: str, ports: tuple[int, int] | None = None) -> None:
        """Add one more network ACL entry, e.g. TCP from a datacenter to a relay in these subnets.

        The security group side is the caller's (``security_group.add_ingress_rule``).
        """
        rule = AclRule(egress=egress, protocol=protocol, cidr=cidr, ports=ports)
        (self.outbound_rules if egress else self.inbound_rules).append(rule)
        self._add_acl_entry(rule)

    def _add_acl_entry(self, rule: AclRule) -> None:
        number = self._next_rule_number[rule.egress]
        self._next_rule_number[rule.egress] = number + RULE_NUMBER_STEP
        acl_entry(self, f"{'Egress' if rule.egress else 'Ingress'}{number}", self.network_acl, number, rule)


def acl_entry(
    scope: Construct, id_: str, network_acl: ec2.INetworkAcl, number: int, rule: AclRule
) -> ec2.CfnNetworkAclEntry:
    """``rule`` as an allow entry numbered ``number`` in ``network_acl``: the one way mcastkit
    writes a network ACL entry (the members', the relay's and the streams')."""
    return ec2.CfnNetworkAclEntry(
        scope,
        id_,
        network_acl_id=network_acl.network_acl_id,
        rule_number=number,
        rule_action="allow",
        egress=rule.egress,
        protocol=rule.protocol,
        cidr_block=rule.cidr,
        port_range=(
            ec2.CfnNetworkAclEntry.PortRangeProperty(from_=rule.ports[0], to=rule.ports[1])
            if rule.ports
            else None
        ),
    )
