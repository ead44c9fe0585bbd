"""The security group an overlay's hosts in a VPC wear: the overlay's UDP port between its hosts
(VXLAN's, or WireGuard's when VXLAN runs inside it), nothing else."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from mcastkit.config import Overlay


class OverlayPeers(Construct):
    """One security group: in and out, UDP ``overlay.underlay_port`` from and to each host's
    underlay /32.

    Attach it to the overlay's instances in this VPC (next to their own groups). Every frame of the
    overlay is unicast UDP between hosts, so a VPC (which carries no multicast) needs nothing more;
    a network ACL that blocks the port between their subnets would need an entry too. The
    description names the overlay only: a description cannot change without a new group, which
    CloudFormation could not delete while the instances still wear the old one.

    Attributes:
        security_group.
    """

    def __init__(self, scope: Construct, id_: str, *, vpc: ec2.IVpc, overlay: Overlay) -> None:
        super().__init__(scope, id_)
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description=f"mcastkit overlay {overlay.name}: UDP between its hosts",
            allow_all_outbound=False,
        )
        port = ec2.Port.udp(overlay.underlay_port)
        what = "VXLAN" if overlay.wireguard is None else "WireGuard"
        for host in overlay.hosts:
            peer = ec2.Peer.ipv4(f"{host.underlay}/32")
            self.security_group.add_ingress_rule(peer, port, f"{what} from {host.name}")
            self.security_group.add_egress_rule(peer, port, f"{what} to {host.name}")
