"""What deploying one set of CloudFormation templates over another does, resource by resource.

Pure data in, pure data out: templates are the JSON dicts ``cdk synth`` writes, keyed by stack
name. A resource is *replaced* when its type changes, when a create-only property changes (from
the resource schemas, :mod:`mcastkit.plan.schemas`), when a property the handler never applies
changes, or when it refers to a resource that is replaced (the reference takes a new id at
deploy time, so the property changes even though its text does not).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mcastkit.plan.schemas import CREATE_ONLY, NOT_APPLIED_ON_UPDATE, REMOVED_BY_REVOCATION, STATEFUL

Template = Mapping[str, Any]
#: The keys of a resource that are not its configuration: a change to them alone is no update.
_NOT_CONFIGURATION = {"Metadata"}


class Action(StrEnum):
    ADD = "add"
    UPDATE = "update"
    REPLACE = "replace"
    REMOVE = "remove"


@dataclass(frozen=True)
class ResourceChange:
    """One resource of one stack, and what the deploy does to it."""

    stack: str
    logical_id: str
    type: str
    action: Action
    #: Why: the properties that changed, and for a replacement what forces it.
    why: str = ""
    #: The construct path (``aws:cdk:path`` metadata), which names the domain or subnet it serves.
    path: str = ""

    @property
    def stateful(self) -> bool:
        return self.type in STATEFUL

    @property
    def refused(self) -> bool:
        """A replacement or removal of a resource customers depend on. Removing a share is not:
        it goes when its last customer does, and that revocation is what the config says."""
        if self.action is Action.REMOVE and self.type in REMOVED_BY_REVOCATION:
            return False
        return self.stateful and self.action in (Action.REPLACE, Action.REMOVE)


@dataclass(frozen=True)
class ExportChange:
    """An output another stack reads that goes away or takes a new value.

    ``locked``: an export (``Fn::ImportValue``), which CloudFormation refuses to change or
    delete while imported; otherwise an output read with ``Fn::GetStackOutput``, which is not
    locked, but whose resource the reader must stop using before it goes.
    """

    stack: str
    name: str
    removed: bool
    #: Stacks that read it now (in the deployed templates).
    importers: tuple[str, ...]
    #: Readers that still read it after the change.
    still_imported_by: tuple[str, ...]
    locked: bool = True


@dataclass
class Plan:
    """Every change, per stack, and the order to deploy the stacks in."""

    changes: list[ResourceChange] = field(default_factory=list)
    exports: list[ExportChange] = field(default_factory=list)
    stacks_added: list[str] = field(default_factory=list)
    stacks_removed: list[str] = field(default_factory=list)
    #: The stacks to deploy, in order (``None`` when no order works: see :attr:`blocked`).
    order: list[str] | None = None
    #: Why no order works, when none does.
    blocked: str = ""

    def of(self, action: Action) -> list[ResourceChange]:
        return [c for c in self.changes if c.action is action]

    @property
    def refused(self) -> list[ResourceChange]:
        return [c for c in self.changes if c.refused]

    @property
    def safe(self) -> bool:
        """No stateful resource replaced or removed, and the stacks can be deployed in some order."""
        return not self.refused and self.order is not None


def _references(value: Any) -> Iterator[str]:
    """Logical ids a property value refers to (``Ref``, ``Fn::GetAtt``, ``Fn::Sub``'s ``${X}``)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                yield inner
            elif key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) else str(inner).split(".")[0]
                yield str(target)
            else:
                yield from _references(inner)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)
    elif isinstance(value, str) and "${" in value:
        for part in value.split("${")[1:]:
            yield part.split("}")[0].split(".")[0]


def _output_key(stack: str, output: str) -> str:
    return f"{stack}:{output}"


def _imports(value: Any) -> Iterator[str]:
    """What a template reads from other stacks: export names (``Fn::ImportValue``) and outputs
    (``Fn::GetStackOutput``, as ``STACK:OUTPUT``)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Fn::ImportValue" and isinstance(inner, str):
                yield inner
            elif key == "Fn::GetStackOutput" and isinstance(inner, dict):
                yield _output_key(str(inner.get("StackName")), str(inner.get("OutputName")))
            else:
                yield from _imports(inner)
    elif isinstance(value, list):
        for item in value:
            yield from _imports(item)


def _get(properties: Mapping[str, Any], path: str) -> Any:
    value: Any = properties
    for part in path.split("/"):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _changed_properties(old: Mapping[str, Any], new: Mapping[str, Any], *, renewed: set[str]) -> list[str]:
    """Top-level properties whose value differs, or that refer to a resource being replaced."""
    keys = sorted(set(old) | set(new))
    return [
        key
        for key in keys
        if _canonical(old.get(key)) != _canonical(new.get(key)) or renewed & set(_references(new.get(key)))
    ]


def _forced(
    type_: str, changed: list[str], old: Mapping[str, Any], new: Mapping[str, Any], renewed: set[str]
) -> list[str]:
    """The create-only (or never-applied) properties among ``changed``; a nested one changes when
    its text does or when it refers to something that takes a new value (``renewed``)."""
    forced = []
    for path in (*CREATE_ONLY.get(type_, ()), *NOT_APPLIED_ON_UPDATE.get(type_, ())):
        top = path.split("/")[0]
        if top not in changed:
            continue
        value = _get(new, path)
        if (
            path == top
            or _canonical(_get(old, path)) != _canonical(value)
            or renewed & (set(_references(value)) | set(_imports(value)))
        ):
            forced.append(path)
    return forced


def _path(resource: Mapping[str, Any]) -> str:
    return str(resource.get("Metadata", {}).get("aws:cdk:path", ""))


def diff_stack(stack: str, old: Template, new: Template, renewed_imports: set[str]) -> list[ResourceChange]:
    """Changes to one stack's resources. ``renewed_imports``: imported export names whose value
    changes in this deploy (a property that imports one changes too)."""
    old_resources: Mapping[str, Any] = old.get("Resources", {})
    new_resources: Mapping[str, Any] = new.get("Resources", {})
    # A parameter whose default changes (a kit made from a config with new recorded ids) changes
    # every property that refers to it, as a replaced resource does.
    old_parameters, new_parameters = old.get("Parameters", {}), new.get("Parameters", {})
    parameters = {
        name
        for name in set(old_parameters) | set(new_parameters)
        if _canonical(old_parameters.get(name)) != _canonical(new_parameters.get(name))
    }
    replaced: dict[str, str] = {}
    changes: dict[str, ResourceChange] = {}
    # Replacements cascade through references: repeat until nothing new is replaced.
    while True:
        found = False
        for logical_id in sorted(set(old_resources) & set(new_resources)):
            if logical_id in replaced:
                continue
            before, after = old_resources[logical_id], new_resources[logical_id]
            type_ = str(after["Type"])
            if before["Type"] != after["Type"]:
                replaced[logical_id] = f"its type changes from {before['Type']}"
                found = True
                continue
            old_props, new_props = before.get("Properties", {}), after.get("Properties", {})
            renewed = set(replaced) | parameters
            changed = _changed_properties(old_props, new_props, renewed=renewed)
            changed += [
                key
                for key in sorted(new_props)
                if key not in changed and renewed_imports & set(_imports(new_props[key]))
            ]
            forced = _forced(type_, changed, old_props, new_props, renewed | renewed_imports)
            if forced:
                never = set(NOT_APPLIED_ON_UPDATE.get(type_, ()))
                reasons = [
                    f"{p} cannot change after creation (the handler ignores it)"
                    if p in never
                    else f"{p} is create-only"
                    for p in forced
                ]
                replaced[logical_id] = "; ".join(reasons)
                found = True
            elif changed or any(
                _canonical(before.get(k)) != _canonical(after.get(k))
                for k in set(before) | set(after)
                if k not in _NOT_CONFIGURATION | {"Properties", "Type"}
            ):
                changes[logical_id] = ResourceChange(
                    stack, logical_id, type_, Action.UPDATE, ", ".join(changed) or "attributes", _path(after)
                )
        if not found:
            break
    for logical_id, why in replaced.items():
        after = new_resources[logical_id]
        changes[logical_id] = ResourceChange(
            stack, logical_id, str(after["Type"]), Action.REPLACE, why, _path(after)
        )
    for logical_id in set(new_resources) - set(old_resources):
        after = new_resources[logical_id]
        changes[logical_id] = ResourceChange(
            stack, logical_id, str(after["Type"]), Action.ADD, "", _path(after)
        )
    for logical_id in set(old_resources) - set(new_resources):
        before = old_resources[logical_id]
        changes[logical_id] = ResourceChange(
            stack, logical_id, str(before["Type"]), Action.REMOVE, "", _path(before)
        )
    return [changes[k] for k in sorted(changes) if changes[k].type != "AWS::CDK::Metadata"]


def _exports(stack: str, template: Template) -> dict[str, tuple[Any, bool]]:
    """What other stacks may read of ``stack``: each export name and each output (``STACK:OUTPUT``),
    with its value and whether it is locked (an export)."""
    found: dict[str, tuple[Any, bool]] = {}
    for key, output in template.get("Outputs", {}).items():
        if not isinstance(output, Mapping):
            continue
        found[_output_key(stack, key)] = (output.get("Value"), False)
        name = output.get("Export", {}).get("Name")
        if isinstance(name, str):
            found[name] = (output.get("Value"), True)
    return found


def _importers(templates: Mapping[str, Template]) -> dict[str, set[str]]:
    """Export name -> the stacks that import it."""
    found: dict[str, set[str]] = {}
    for stack, template in templates.items():
        for name in _imports(template.get("Resources", {})):
            found.setdefault(name, set()).add(stack)
        for name in _imports(template.get("Outputs", {})):
            found.setdefault(name, set()).add(stack)
    return found


def plan(old: Mapping[str, Template], new: Mapping[str, Template], *, order: Iterable[str] = ()) -> Plan:
    """What deploying ``new`` over ``old`` does. ``order``: the stacks' usual deploy order (for
    example network, sharing, compute), kept where the dependencies allow."""
    result = Plan(
        stacks_added=sorted(set(new) - set(old)),
        stacks_removed=sorted(set(old) - set(new)),
    )
    old_importers, new_importers = _importers(old), _importers(new)
    # Exporting stacks first: an export whose value refers to a replaced resource changes value.
    exporters = [s for s in sorted(set(old) & set(new)) if old[s].get("Outputs")]
    others = [s for s in sorted(set(old) & set(new)) if s not in exporters]
    renewed: set[str] = set()
    for stack in (*exporters, *others):
        changes = diff_stack(stack, old[stack], new[stack], renewed)
        result.changes += changes
        replaced = {c.logical_id for c in changes if c.action is Action.REPLACE}
        old_exports, new_exports = _exports(stack, old[stack]), _exports(stack, new[stack])
        for name, (value, locked) in old_exports.items():
            removed = name not in new_exports
            renamed = not removed and (
                _canonical(value) != _canonical(new_exports[name][0])
                or bool(replaced & set(_references(value)))
            )
            if not (removed or renamed):
                continue
            renewed.add(name)
            importers = tuple(sorted(old_importers.get(name, set()) - {stack}))
            if importers:
                still = tuple(sorted(new_importers.get(name, set()) & set(importers)))
                result.exports.append(ExportChange(stack, name, removed, importers, still, locked))
    for stack in result.stacks_added:
        result.changes += diff_stack(stack, {}, new[stack], set())
    for stack in result.stacks_removed:
        result.changes += diff_stack(stack, old[stack], {}, set())
    deployed = {name for stack, template in old.items() for name in _exports(stack, template)} - renewed
    result.order, result.blocked = _deploy_order(new, result.exports, list(order), deployed)
    return result


def _deploy_order(
    new: Mapping[str, Template], exports: list[ExportChange], usual: list[str], deployed: set[str]
) -> tuple[list[str] | None, str]:
    """Stacks in an order CloudFormation accepts: an importer after the stack that exports a new
    (or newly valued) export it imports, and a stack that stops importing a changing export
    before the stack that changes it. ``deployed``: exports that exist already, unchanged."""
    stacks = [s for s in usual if s in new] + sorted(s for s in new if s not in usual)
    exporter_of = {name: stack for stack in new for name in _exports(stack, new[stack])}
    after: dict[str, set[str]] = {s: set() for s in stacks}
    for stack in stacks:
        for name in _imports(new[stack].get("Resources", {})):
            if name in exporter_of and exporter_of[name] != stack and name not in deployed:
                after[stack].add(exporter_of[name])
    for change in exports:
        if change.locked and change.still_imported_by:
            return None, (
                f"{change.stack} changes export {change.name}, which {', '.join(change.still_imported_by)} "
                "still imports after the change: CloudFormation refuses to change an export in use; "
                "first deploy a change that stops the import, then this one"
            )
        # A reader that stops reading goes first (it lets go of the resource, or of the export);
        # one that still reads a new value goes after, by the import edge above.
        for importer in set(change.importers) - set(change.still_imported_by):
            if importer in after:
                after[change.stack].add(importer)
    ordered: list[str] = []
    while len(ordered) < len(stacks):
        ready = [s for s in stacks if s not in ordered and after[s] <= set(ordered)]
        if not ready:
            cycle = sorted(s for s in stacks if s not in ordered)
            return (
                None,
                f"the stacks {', '.join(cycle)} each need another deployed first; split the change in two",
            )
        ordered.append(ready[0])
    return ordered, ""
