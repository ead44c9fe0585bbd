"""The security group an overlay's hosts in a VPC wear: VXLAN (UDP ``overlay.port``) to and from
the overlay's hosts only, nothing else."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from mcastkit.config import Overlay


class OverlayPeers(Construct):
    """One security group: in and out, UDP ``overlay.port`` from and to each host's underlay /32.

    Attach it to the overlay's instances in this VPC (next to their own groups). Every frame of the
    overlay is unicast UDP between hosts, so a VPC (which carries no multicast) needs nothing more;
    a network ACL that blocks the port between their subnets would need an entry too.

    Attributes:
        security_group.
    """

    def __init__(self, scope: Construct, id_: str, *, vpc: ec2.IVpc, overlay: Overlay) -> None:
        super().__init__(scope, id_)
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description=f"mcastkit overlay {overlay.name}: VXLAN {overlay.vni} on UDP {overlay.port} "
            "between its hosts",
            allow_all_outbound=False,
        )
        port = ec2.Port.udp(overlay.port)
        for host in overlay.hosts:
            peer = ec2.Peer.ipv4(f"{host.underlay}/32")
            self.security_group.add_ingress_rule(peer, port, f"VXLAN from {host.name}")
            self.security_group.add_egress_rule(peer, port, f"VXLAN to {host.name}")
