"""Per-region stacks: ``{project}-{region}-network|sharing|compute``.

Stacks only compose :mod:`mcastkit.constructs`; ``app.py`` alone reads context and the
environment and calls :func:`add_region_stacks` once per configured region.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk

from mcastkit.config import Config
from mcastkit.config.names import TRANSIT_GATEWAY_ID_KEY, domain_key, stream_key
from mcastkit.stacks.compute import ComputeStack
from mcastkit.stacks.eks import EksStack
from mcastkit.stacks.network import NetworkStack
from mcastkit.stacks.sharing import SharingStack

__all__ = ["ComputeStack", "EksStack", "NetworkStack", "RegionStacks", "SharingStack", "add_region_stacks"]


@dataclass(frozen=True)
class RegionStacks:
    """The stacks of one region (``eks`` only with an ``eks:`` section)."""

    network: NetworkStack
    sharing: SharingStack
    compute: ComputeStack
    eks: EksStack | None = None


def add_region_stacks(app: cdk.App, config: Config, region: str) -> RegionStacks:
    """Add the network, sharing and compute stacks of ``region`` to ``app``.

    Every stack is deployed to the provider account in ``region`` (explicit env, pinned
    availability zones: a synth needs no credentials and makes no lookups).
    """
    env = cdk.Environment(account=config.provider_account, region=region)
    network = NetworkStack(app, config.stack_name(region, "network"), config=config, region=region, env=env)
    sharing = SharingStack(
        app,
        config.stack_name(region, "sharing"),
        config=config,
        region=region,
        # Imported by export name, not passed as tokens: a token would add an output to the
        # network stack per shared domain, which would come and go with the customers.
        transit_gateway_arn=cdk.Fn.import_value(network.export_name("TransitGatewayArn")),
        domain_arns={
            name: cdk.Fn.import_value(network.export_name(domain_key(name, "Arn")))
            for name in network.domains
        },
        endpoint_service_ids={
            name: cdk.Fn.import_value(network.export_name(stream_key(name, "Id")))
            for name in network.replay_endpoints
        },
        env=env,
    )
    sharing.add_stack_dependency(network)
    compute = ComputeStack(
        app,
        config.stack_name(region, "compute"),
        config=config,
        region=region,
        vpc=network.network.vpc,
        subnets=network.network.subnets,
        security_group=network.member_rules.security_group,
        network_acl=network.member_rules.network_acl,
        # By export name, as the sharing stack does: the network stack's outputs stay as they are.
        transit_gateway_id=cdk.Fn.import_value(network.export_name(TRANSIT_GATEWAY_ID_KEY)),
        journals=network.journals,
        replay_endpoints=network.replay_endpoints,
        env=env,
    )
    eks = None
    if config.regions[region].eks:
        eks = EksStack(
            app,
            config.stack_name(region, "eks"),
            config=config,
            region=region,
            vpc=network.network.vpc,
            subnets=network.network.subnets,
            node_subnets=network.network.node_subnets,
            security_group=network.member_rules.security_group,
            env=env,
        )
    for stack in (network, sharing, compute, eks):
        if stack is not None:
            cdk.Tags.of(stack).add("mcastkit:project", config.project)
            cdk.Tags.of(stack).add("mcastkit:region", region)
    return RegionStacks(network=network, sharing=sharing, compute=compute, eks=eks)
