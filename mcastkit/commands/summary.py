"""``mcastkit summary``: what a synth produced, per region and stack."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from mcastkit.console import Console
from mcastkit.exit import ExitStatus

#: Resource types worth a column of their own in the summary; the rest are counted.
HEADLINE_TYPES = {
    "AWS::EC2::TransitGateway": "TGW",
    "AWS::EC2::TransitGatewayMulticastDomain": "domains",
    "AWS::EC2::TransitGatewayMulticastDomainAssociation": "associations",
    "AWS::RAM::ResourceShare": "shares",
    "AWS::ECS::Cluster": "clusters",
    "AWS::ECS::Service": "services",
    "AWS::EKS::Cluster": "eks",
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("summary", help="summarize a synthesized cloud assembly")
    parser.add_argument("assembly", nargs="?", default="cdk.out", help="cdk.out directory")
    parser.set_defaults(handler=run)


def load_stacks(assembly: Path) -> list[dict[str, Any]]:
    """Stacks in the assembly manifest with their region and resource types."""
    manifest = json.loads((assembly / "manifest.json").read_text())
    stacks = []
    for artifact_id, artifact in manifest.get("artifacts", {}).items():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        properties = artifact["properties"]
        template = json.loads((assembly / properties["templateFile"]).read_text())
        environment = artifact.get("environment", "aws://unknown/unknown")
        stacks.append(
            {
                "stack": properties.get("stackName", artifact_id),
                "region": environment.rsplit("/", 1)[-1],
                "resources": Counter(r["Type"] for r in template.get("Resources", {}).values()),
            }
        )
    return stacks


def run(args: argparse.Namespace, console: Console) -> ExitStatus:
    assembly = Path(args.assembly)
    if not (assembly / "manifest.json").is_file():
        console.error(f"{assembly}: no cloud assembly here (run `make synth` first)")
        return ExitStatus.BAD_INPUT
    stacks = sorted(load_stacks(assembly), key=lambda s: (s["region"], s["stack"]))
    headers = ["region", "stack", "resources", *HEADLINE_TYPES.values()]
    rows = [
        [
            s["region"],
            s["stack"],
            str(sum(s["resources"].values())),
            *(str(s["resources"].get(t, 0) or "-") for t in HEADLINE_TYPES),
        ]
        for s in stacks
    ]
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    for row in [headers, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)), file=console.out)
    total = sum(sum(s["resources"].values()) for s in stacks)
    regions = len({s["region"] for s in stacks})
    print(f"{len(stacks)} stacks, {total} resources in {regions} region(s): {assembly}/", file=console.out)
    for manifests in sorted((assembly / "eks").glob("*/")):
        print(
            f"EKS {manifests.name}: Kubernetes objects in {manifests}/, applied after `cdk deploy` "
            '(README, "EKS: pods on the multicast network")',
            file=console.out,
        )
    return ExitStatus.OK
