"""``mcastkit plan OLD NEW``: what a config change does to each stack, offline, before a deploy.

OLD and NEW are config files (synthesized here, no credentials) or recorded ``cdk.out``
directories. The plan lists per stack what is added, changed in place, replaced and removed
(create-only properties from the CloudFormation resource schemas), exports that change while
another stack imports them, the customers who lose delivery and for how long, and the order to
deploy the stacks in. It exits 1 when the change replaces or removes a transit gateway, an
attachment, a domain, an association, a subnet, the VPC or a share, unless ``--allow-replace``,
and when no deploy order works.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mcastkit.config import Config, load_config
from mcastkit.config.names import PROVIDER_STACK_KINDS
from mcastkit.console import Console
from mcastkit.errors import BadInput
from mcastkit.exit import ExitStatus
from mcastkit.plan.diff import Action, Plan, plan
from mcastkit.plan.impact import Impact, impacts, revoked, worst
from mcastkit.plan.templates import Templates, kit_templates, provider_templates, recorded_templates

_SIGNS = {Action.ADD: "+", Action.UPDATE: "~", Action.REPLACE: "!", Action.REMOVE: "-"}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "plan", help="what a config change does to each stack: replacements, exports, customers, order"
    )
    parser.add_argument("old", type=Path, help="the deployed config file, or a recorded cdk.out directory")
    parser.add_argument("new", type=Path, help="the changed config file, or a cdk.out directory")
    parser.add_argument("--customer", help="plan this customer's kit stack instead of the provider's")
    parser.add_argument("--region", help="with --customer: the region of the kit")
    parser.add_argument(
        "--allow-replace",
        action="store_true",
        help="exit 0 even when stateful resources are replaced or removed (they still are listed)",
    )
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.set_defaults(handler=run)


def _side(path: Path, args: argparse.Namespace) -> tuple[Templates, Config | None]:
    if path.is_dir():
        if args.customer:
            raise BadInput(f"{path}: --customer plans a kit from config files, not from a cdk.out")
        return recorded_templates(path), None
    config = load_config(path)
    if args.customer:
        return kit_templates(config, args.customer, args.region), config
    return provider_templates(config), config


def _usual_order(config: Config | None) -> list[str]:
    if config is None:
        return []
    return [config.stack_name(region, kind) for region in config.regions for kind in PROVIDER_STACK_KINDS]


def run(args: argparse.Namespace, console: Console) -> ExitStatus:
    if bool(args.customer) != bool(args.region):
        raise BadInput("--customer and --region go together (the kit of one customer in one region)")
    old, old_config = _side(args.old, args)
    new, new_config = _side(args.new, args)
    result = plan(old, new, order=_usual_order(new_config))
    lost = impacts(result, old_config) if old_config and not args.customer else []
    if old_config and new_config and not args.customer:
        lost = worst(lost + revoked(old_config, new_config))
    if args.json:
        print(json.dumps(_as_json(result, lost), indent=2), file=console.out)
    else:
        print("\n".join(render(result, lost, args)), file=console.out)
    if result.order is None or (result.refused and not args.allow_replace):
        return ExitStatus.FAILURE
    return ExitStatus.OK


def render(result: Plan, lost: list[Impact], args: argparse.Namespace) -> list[str]:
    """The plan as lines for a terminal."""
    lines = [f"plan: {args.old} -> {args.new}"]
    stacks = sorted({c.stack for c in result.changes})
    if not stacks:
        lines.append("no changes")
    for stack in stacks:
        changes = [c for c in result.changes if c.stack == stack]
        counts = ", ".join(f"{len([c for c in changes if c.action is a])} {a.value}" for a in Action)
        status = (
            " (new stack)"
            if stack in result.stacks_added
            else " (stack removed)"
            if stack in result.stacks_removed
            else ""
        )
        lines.append(f"{stack}{status}: {counts}")
        for change in changes:
            why = f": {change.why}" if change.why else ""
            flag = "  REFUSED" if change.refused else ""
            lines.append(f"  {_SIGNS[change.action]} {change.type} {change.logical_id}{why}{flag}")
    for export in result.exports:
        verb = "drops" if export.removed else "changes"
        what = "export" if export.locked else "output"
        lines.append(f"{what}: {export.stack} {verb} {export.name}, read by {', '.join(export.importers)}")
    for impact in lost:
        lines.append(f"customer {impact.customer} ({impact.region}) loses {impact.what}: {impact.how_long}")
    if result.order is None:
        lines.append(f"no deploy order works: {result.blocked}")
    else:
        lines.append(f"deploy in this order: {', '.join(result.order)}")
        lines += deploy_commands(result, args.new)
    if result.refused:
        verdict = (
            "allowed by --allow-replace" if args.allow_replace else "refused; pass --allow-replace to accept"
        )
        lines.append(f"{len(result.refused)} stateful resource(s) replaced or removed: {verdict}")
    return lines


def deploy_commands(result: Plan, new: Path) -> list[str]:
    """The commands that deploy the changed stacks in the plan's order. ``--exclusively``: without
    it the CDK deploys a stack's dependencies first, whatever the order; ``--force`` for a stack
    that reads a changed output with ``Fn::GetStackOutput``, whose template text does not change."""
    changed = {c.stack for c in result.changes}
    rereads = {s for e in result.exports if not e.locked for s in e.still_imported_by}
    config = f" -c config={new}" if not new.is_dir() else f" --app {new}"
    return [
        f"  npx cdk deploy --exclusively{' --force' if stack in rereads else ''}{config} {stack}"
        for stack in result.order or []
        if stack in changed | rereads
    ]


def _as_json(result: Plan, lost: list[Impact]) -> dict[str, Any]:
    return {
        "safe": result.safe,
        "changes": [
            {
                "stack": c.stack,
                "logical_id": c.logical_id,
                "type": c.type,
                "action": c.action.value,
                "why": c.why,
                "refused": c.refused,
            }
            for c in result.changes
        ],
        "exports": [vars(e) for e in result.exports],
        "customers": [vars(i) for i in lost],
        "order": result.order,
        "blocked": result.blocked,
        "stacks_added": result.stacks_added,
        "stacks_removed": result.stacks_removed,
    }
