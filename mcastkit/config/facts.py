"""AWS facts the config is checked against, each with where it is documented.

Data only: the models and checks read these; nothing here validates. Where a value is
inferred rather than documented, the comment says so.
"""

from __future__ import annotations

import ipaddress
from typing import Final

#: Commercial regions where the Transit Gateway FAQ lists multicast support; a config may narrow
#: the list with ``allowed_regions`` (for example to the regions the provider operates in).
MULTICAST_REGIONS: Final[tuple[str, ...]] = (
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

#: Instance families built on the Xen hypervisor: they cannot send multicast through a Transit
#: Gateway (Transit Gateway guide, "Multicast considerations"). Their ``.metal`` sizes are Nitro.
NON_NITRO_FAMILIES: Final = frozenset(
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

#: Network interfaces per instance and the CPU architecture of the instance types the hosts may use,
#: from amazon-vpc-cni-k8s pkg/vpc/vpc_ip_resource_limit.go (generated from EC2 DescribeInstanceTypes,
#: ``MaximumNetworkInterfaces``; commit b5218838) and aws-cdk-lib's ``InstanceType.architecture``.
#: An ``awsvpc`` task takes one interface of its host: task slots per host are this less the
#: primary interface (without ENI trunking, which was never validated with multicast).
INSTANCE_TYPES: Final[dict[str, tuple[int, str]]] = {
    "c5n.large": (3, "x86_64"),
    "c5n.xlarge": (4, "x86_64"),
    "c5n.2xlarge": (4, "x86_64"),
    "c5n.4xlarge": (8, "x86_64"),
    "c5n.9xlarge": (8, "x86_64"),
    "c6in.large": (3, "x86_64"),
    "c6in.xlarge": (4, "x86_64"),
    "c6in.2xlarge": (4, "x86_64"),
    "c6in.4xlarge": (8, "x86_64"),
    "c6in.8xlarge": (8, "x86_64"),
    "c6i.large": (3, "x86_64"),
    "c6i.xlarge": (4, "x86_64"),
    "c6i.2xlarge": (4, "x86_64"),
    "c6i.4xlarge": (8, "x86_64"),
    "c7i.large": (3, "x86_64"),
    "c7i.xlarge": (4, "x86_64"),
    "c7i.2xlarge": (4, "x86_64"),
    "m6i.large": (3, "x86_64"),
    "m6i.xlarge": (4, "x86_64"),
    "m6i.2xlarge": (4, "x86_64"),
    "m7i.large": (3, "x86_64"),
    "m7i.xlarge": (4, "x86_64"),
    "r6i.large": (3, "x86_64"),
    "r6i.xlarge": (4, "x86_64"),
    "c6gn.large": (3, "arm64"),
    "c6gn.xlarge": (4, "arm64"),
    "c7gn.large": (3, "arm64"),
    "c7gn.xlarge": (4, "arm64"),
    "c7gn.2xlarge": (4, "arm64"),
}

#: IPv4 addresses per interface and vCPUs of the same instance types, for EKS nodes' pod capacity:
#: the addresses from the same vpc_ip_resource_limit.go (``IPv4Limit``), the vCPUs from EC2's
#: instance type pages. The VPC CNI gives each pod one secondary address of an interface it manages.
IPV4_PER_INTERFACE_AND_VCPUS: Final[dict[str, tuple[int, int]]] = {
    "c5n.large": (10, 2),
    "c5n.xlarge": (15, 4),
    "c5n.2xlarge": (15, 8),
    "c5n.4xlarge": (30, 16),
    "c5n.9xlarge": (30, 36),
    "c6in.large": (10, 2),
    "c6in.xlarge": (15, 4),
    "c6in.2xlarge": (15, 8),
    "c6in.4xlarge": (30, 16),
    "c6in.8xlarge": (30, 32),
    "c6i.large": (10, 2),
    "c6i.xlarge": (15, 4),
    "c6i.2xlarge": (15, 8),
    "c6i.4xlarge": (30, 16),
    "c7i.large": (10, 2),
    "c7i.xlarge": (15, 4),
    "c7i.2xlarge": (15, 8),
    "m6i.large": (10, 2),
    "m6i.xlarge": (15, 4),
    "m6i.2xlarge": (15, 8),
    "m7i.large": (10, 2),
    "m7i.xlarge": (15, 4),
    "r6i.large": (10, 2),
    "r6i.xlarge": (15, 4),
    "c6gn.large": (10, 2),
    "c6gn.xlarge": (15, 4),
    "c7gn.large": (10, 2),
    "c7gn.xlarge": (15, 4),
    "c7gn.2xlarge": (15, 8),
}
#: The EKS recommended pod ceiling per node: 110 below 30 vCPUs, 250 from 30 (EKS user guide,
#: "Amazon EKS recommended maximum Pods for each Amazon EC2 instance type"; nodeadm applies it).
EKS_MAX_PODS_SMALL: Final = 110
EKS_MAX_PODS_LARGE: Final = 250
EKS_MAX_PODS_VCPU_THRESHOLD: Final = 30
#: EKS places its control-plane interfaces in the cluster's subnets, which must span at least two
#: availability zones (EKS user guide, "View Amazon EKS networking requirements for VPC and subnets").
EKS_CLUSTER_ZONES_MIN: Final = 2
#: Kubernetes versions whose manifests mcastkit validates offline (kubernetes-validate's schemas)
#: and for which the EKS AMI is built (awslabs/amazon-eks-ami templates/al2023, variables-1.3x.json).
#: EKS refuses a version that left its support at deploy; 1.36 is listed by the EKS user guide, its
#: AMI templates postdate the snapshot mcastkit read (inferred available).
EKS_KUBERNETES_VERSIONS: Final = ("1.33", "1.34", "1.35", "1.36")
#: The default: the newest version whose AMI templates mcastkit has seen.
EKS_DEFAULT_KUBERNETES_VERSION: Final = "1.35"

# Multicast groups are checked by mcastkit.net.addresses.data_group, shared with the command line.

#: A VPC's primary CIDR is /16 to /28 (VPC user guide, "VPC CIDR blocks"), and so is a subnet's
#: (VPC user guide, "Subnet CIDR blocks").
VPC_PREFIX_RANGE: Final = (16, 28)
SUBNET_PREFIX_RANGE: Final = (16, 28)
#: Ranges that are no unicast network: "this network", loopback, link-local, multicast and the
#: reserved class E (RFC 6890). A VPC, a subnet or a datacenter cannot be numbered from them.
NOT_UNICAST: Final = tuple(
    ipaddress.IPv4Network(net)
    for net in ("0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4")
)
#: A datacenter range wider than this is no datacenter: it would open the relay port to a large
#: part of the internet. A choice of mcastkit, not an AWS limit.
WIDEST_DATACENTER_PREFIX: Final = 8

#: Private ASNs a Transit Gateway accepts as ``AmazonSideAsn`` (Transit Gateway guide, "Create a
#: transit gateway": 64512-65534 or 4200000000-4294967294).
PRIVATE_ASNS: Final = ((64512, 65534), (4_200_000_000, 4_294_967_294))

#: Transit Gateway quotas (Transit Gateway guide, "Quotas for your transit gateways"), defaults.
DOMAINS_PER_TRANSIT_GATEWAY: Final = 20
#: Members + sources per transit gateway: 10,000, not adjustable; each group needs a source and a
#: member, so at most 5,000 groups carry traffic.
GROUPS_PER_TRANSIT_GATEWAY: Final = 5000
#: Members per group: 100, not adjustable; one is the provider's own receiver.
CUSTOMERS_PER_DOMAIN: Final = 99
#: Sources per group (adjustable); every static source of a domain is registered for every group.
SOURCES_PER_GROUP: Final = 1
#: VPC quotas (VPC user guide, "Amazon VPC quotas"): rules per security group per direction
#: (adjustable) and rules per network ACL per direction (adjustable up to 40).
SECURITY_GROUP_RULES: Final = 60
NETWORK_ACL_RULES: Final = 20
