"""The EKS stack: a cluster whose pods join a domain's multicast subnets, and its manifests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from constructs import Construct

from mcastkit.config import Config
from mcastkit.constructs.eks_cluster import MulticastEksCluster
from mcastkit.constructs.eks_nodes import MulticastNodes, NodeZone
from mcastkit.constructs.log_key import log_key
from mcastkit.constructs.relay_service import DOCKERFILE, PLATFORMS, REPO_ROOT
from mcastkit.eks.manifests import Manifest, ManifestInputs, ProbeWorkload, manifests
from mcastkit.eks.network import service_cidr
from mcastkit.stacks.base import RegionStack


def cluster_name(project: str, region: str) -> str:
    """The EKS cluster's name: create-only, so derived from what never changes."""
    return f"{project}-{region}"


class EksStack(RegionStack):
    """An EKS cluster in the provider VPC whose pods join ``eks.domain``'s multicast subnets.

    The Kubernetes side (Multus, the NetworkAttachmentDefinition, the probe's pods) is not applied by
    CloudFormation: :attr:`manifests` holds it, written next to the templates for ``kubectl apply``
    (a kubectl handler would need Lambda functions in the VPC, a 57 MB layer, and a custom resource
    that waits on a private endpoint; an admin applies four files once instead).

    Attributes:
        cluster: the :class:`MulticastEksCluster`.
        nodes: the :class:`MulticastNodes`.
        manifests: Kubernetes objects by file name.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: Config,
        region: str,
        vpc: ec2.IVpc,
        subnets: Sequence[ec2.ISubnet],
        node_subnets: Sequence[ec2.ISubnet],
        security_group: ec2.ISecurityGroup,
        **kwargs: Any,
    ) -> None:
        settings = config.regions[region]
        if settings.eks is None:
            raise ValueError(f"region {region} has no eks section")
        spec = settings.eks
        super().__init__(
            scope,
            id_,
            description=f"mcastkit {config.project} {region}: EKS cluster with pods on domain {spec.domain}",
            availability_zones=settings.availability_zones,
            **kwargs,
        )
        pods = spec.pods_per_node
        if pods is None:
            raise ValueError(f"{spec.instance_type}: set eks.max_pods (validation reports this)")
        name = cluster_name(config.project, region)
        services = service_cidr([settings.vpc_cidr])
        self.cluster = MulticastEksCluster(
            self,
            "Cluster",
            name=name,
            version=spec.kubernetes_version,
            vpc=vpc,
            subnets=node_subnets,
            vpc_cidr=settings.vpc_cidr,
            service_cidr=services,
            admin_roles=spec.admin_roles,
            admin_cidrs=spec.admin_cidrs,
            public_access_cidrs=spec.public_access_cidrs,
            encryption_key=log_key(self, "LogKey", description=f"Encrypts the control-plane logs of {name}"),
        )
        node_subnet = dict(zip((s.availability_zone for s in spec.node_subnets), node_subnets, strict=True))
        multicast_subnet = {
            s.availability_zone: subnet
            for s, subnet in zip(settings.subnets, subnets, strict=True)
            if s.domain == spec.domain
        }
        self.nodes = MulticastNodes(
            self,
            "Nodes",
            cluster=self.cluster,
            zones=[
                NodeZone(zone, node_subnet=node_subnet[zone], multicast_subnet=multicast_subnet[zone])
                for zone in settings.eks_node_zones()
            ],
            multicast_security_group=security_group,
            kubernetes_version=spec.kubernetes_version,
            instance_type=spec.instance_type,
            architecture=spec.architecture,
            nodes_per_zone=spec.nodes_per_zone,
            max_pods=pods,
            service_cidr=services,
            ami=spec.ami,
        )
        probe = None
        if spec.probe:
            group = settings.domain(spec.domain).group(spec.probe.group)
            probe = ProbeWorkload(
                group_address=str(group.address),
                port=group.port,
                receivers=spec.probe.receivers,
                rate=spec.probe.rate,
            )
        self.manifests: dict[str, list[Manifest]] = manifests(
            ManifestInputs(region=region, tools_image=self._tools_image(spec.architecture), probe=probe)
        )
        cdk.CfnOutput(self, "ClusterName", value=self.cluster.cluster.ref, description="EKS cluster name")

    def _tools_image(self, architecture: str) -> str:
        """The mcastkit tools image the probe pods run: the same asset the ECS tasks use, published
        to the CDK bootstrap repository; its URI is known at synth (the tag is the asset hash)."""
        asset = ecr_assets.DockerImageAsset(
            self, "ToolsImage", directory=str(REPO_ROOT), file=DOCKERFILE, platform=PLATFORMS[architecture]
        )
        repository = (
            cdk.DefaultStackSynthesizer.DEFAULT_IMAGE_ASSETS_REPOSITORY_NAME.replace(
                "${Qualifier}", cdk.DefaultStackSynthesizer.DEFAULT_QUALIFIER
            )
            .replace("${AWS::AccountId}", self.account)
            .replace("${AWS::Region}", self.region)
        )
        return f"{self.account}.dkr.ecr.{self.region}.amazonaws.com/{repository}:{asset.image_tag}"
