#!/usr/bin/env python3
"""CDK entry point: the only place that reads context and the environment."""

import sys
from pathlib import Path

from mcastkit.config import load_config
from mcastkit.eks.manifests import write_manifests
from mcastkit.errors import McastkitError
from mcastkit.jsii_node import use_pinned_node


def main() -> None:
    # jsii starts Node when aws_cdk is imported: the pinned one, or a clear error first.
    use_pinned_node()
    import aws_cdk as cdk

    from mcastkit.stacks import add_region_stacks

    app = cdk.App()
    config = load_config(app.node.try_get_context("config") or "config/example.yaml")
    stacks = [add_region_stacks(app, config, region) for region in config.regions]
    assembly = app.synth()
    # The Kubernetes side of each EKS stack, for `kubectl apply` (see the README's EKS section).
    for region_stacks in stacks:
        if (eks := region_stacks.eks) is not None:
            write_manifests(Path(assembly.directory) / "eks" / eks.region, eks.manifests)


if __name__ == "__main__":
    try:
        main()
    except McastkitError as err:  # a config problem (ConfigError), or no usable Node
        print(err.render(), file=sys.stderr)
        sys.exit(err.status)
