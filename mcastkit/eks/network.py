"""The pods' multicast network: how a pod gets its node's multicast ENI, as one CNI chain.

``host-device`` moves the ENI into the pod (one pod per node holds it at a time), the
``mcastkit-eni-ipam`` plugin gives it the ENI's own VPC address and the ``224.0.0.0/4`` route, and
``tuning`` forces IGMPv2 in the pod's namespace whatever the node's setting was when the pod's
namespace was created (a new namespace copies ``all``/``default`` from the node's initial one at
creation; a pod created before the node was forced would otherwise join with IGMPv3 reports, which
the Transit Gateway does not hear).
"""

from __future__ import annotations

from ipaddress import IPv4Network
from pathlib import Path
from typing import Any, Final

#: The CNI plugin file, installed on each node as /opt/cni/bin/mcastkit-eni-ipam.
IPAM_PLUGIN: Final = Path(__file__).parent / "cni" / "mcastkit-eni-ipam"
IPAM_PLUGIN_NAME: Final = IPAM_PLUGIN.name
#: The name the node's boot step gives the multicast ENI, whatever the AMI's naming scheme called it
#: (eth1 or ens6): host-device selects the device by this name.
NODE_DEVICE: Final = "mcast0"
#: The ENI's device index in the node's launch template (the primary ENI is 0).
DEVICE_NUMBER: Final = 1
#: The interface name inside the pod (Multus names a pod's first extra interface net1).
POD_INTERFACE: Final = "net1"
NETWORK_NAME: Final = "mcastkit-multicast"
MULTICAST_ROUTE: Final = "224.0.0.0/4"
#: 0.4.0: understood by every plugin in the chain (Debian's and the EKS AMI's builds), with CHECK.
CNI_VERSION: Final = "0.4.0"
IGMPV2_SYSCTLS: Final = {
    "net.ipv4.conf.all.force_igmp_version": "2",
    "net.ipv4.conf.default.force_igmp_version": "2",
}


def multicast_network(*, igmpv2: bool = True) -> dict[str, Any]:
    """The CNI configuration list of the pods' multicast network (a NetworkAttachmentDefinition's
    ``spec.config``). ``igmpv2=False`` leaves out the tuning step: only for showing what it fixes."""
    plugins: list[dict[str, Any]] = [
        {
            "type": "host-device",
            "device": NODE_DEVICE,
            "ipam": {"type": IPAM_PLUGIN_NAME, "deviceNumber": DEVICE_NUMBER, "routes": [MULTICAST_ROUTE]},
        }
    ]
    if igmpv2:
        plugins.append({"type": "tuning", "sysctl": dict(IGMPV2_SYSCTLS)})
    return {"cniVersion": CNI_VERSION, "name": NETWORK_NAME, "plugins": plugins}


#: The label every node that holds its multicast ENI carries (its kubelet flags, from the boot
#: script's nodeadm drop-in), which the multicast pods and Multus select.
NODE_LABEL: Final = "mcastkit.io/multicast-eni"
NODE_LABEL_VALUE: Final = "true"
#: The two service ranges EKS itself chooses between (EKS API reference, ``serviceIpv4Cidr``).
SERVICE_CIDRS: Final = ("10.100.0.0/16", "172.20.0.0/16")


def service_cidr(taken: list[IPv4Network]) -> str:
    """The Kubernetes service range: EKS's own choice, the first of :data:`SERVICE_CIDRS` clear of
    ``taken`` (the VPC). Set explicitly because the nodes' configuration must name it."""
    for candidate in SERVICE_CIDRS:
        if not any(IPv4Network(candidate).overlaps(network) for network in taken):
            return candidate
    raise ValueError(f"both EKS service ranges {', '.join(SERVICE_CIDRS)} overlap {taken}")


def ami_parameter(kubernetes_version: str, architecture: str) -> str:
    """The SSM parameter of the latest EKS-optimized Amazon Linux 2023 AMI (EKS user guide,
    "Retrieve recommended Amazon Linux AMI IDs")."""
    return (
        f"/aws/service/eks/optimized-ami/{kubernetes_version}/amazon-linux-2023/{architecture}"
        "/standard/recommended/image_id"
    )


def node_config(*, cluster: str, endpoint: str, certificate_authority: str, cidr: str, max_pods: int) -> str:
    """The nodeadm ``NodeConfig`` of a node (``application/node.eks.aws`` user data part): the cluster
    it joins and the pods it may hold (the VPC CNI's interfaces only). The multicast label is not
    here: the boot script adds it in a drop-in once the node holds its ENI.

    The values may be CloudFormation tokens (the cluster's endpoint and certificate), so this is
    text, not YAML dumped from a dict."""
    return "\n".join(
        [
            "---",
            "apiVersion: node.eks.aws/v1alpha1",
            "kind: NodeConfig",
            "spec:",
            "  cluster:",
            f"    name: {cluster}",
            f"    apiServerEndpoint: {endpoint}",
            f"    certificateAuthority: {certificate_authority}",
            f"    cidr: {cidr}",
            "  kubelet:",
            "    config:",
            f"      maxPods: {max_pods}",
            "",
        ]
    )
