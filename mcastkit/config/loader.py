"""Reading a config file: bytes to YAML to models to checks, every failure a :class:`Problem`.

YAML is read strictly: a repeated key is refused (YAML would keep the last one silently), the
file must be UTF-8 (a UTF-8 BOM is fine) and hold one mapping, and integers keep the text they
were written as, so an unquoted account id can be reported as the operator wrote it.
"""

from __future__ import annotations

import difflib
from pathlib import Path as FilePath
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from mcastkit.config import models as _models
from mcastkit.config.checks import config_problems, overlays_problems
from mcastkit.config.models import Config, Overlay, OverlayFile
from mcastkit.config.names import PATTERN_MEANINGS
from mcastkit.config.problems import NO_VALUE, ConfigError, FieldProblem, Path, Problem

_MERGE_TAG = "tag:yaml.org,2002:merge"
#: Pydantic's messages for a few error types, in the words of the rest of the messages.
_PLAIN_WORDS = {
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "too_short": "needs at least {min_length} item(s)",
    "too_long": "takes at most {max_length} item(s)",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be text",
    "dict_type": "must be a mapping (KEY: VALUE lines)",
    "list_type": "must be a list",
    "model_type": "must be a mapping of fields",
    "enum": "must be one of {expected}",
    "string_pattern_mismatch": "must match {pattern}",
}
#: The section each model is written as, to say where a field belongs.
_SECTIONS: dict[type[BaseModel], str] = {
    _models.Config: "the top level",
    _models.Region: "regions.<region>",
    _models.Domain: "domains[]",
    _models.Group: "groups[]",
    _models.Subnet: "subnets[]",
    _models.Capacity: "capacity",
    _models.Relay: "relay",
    _models.Probe: "probe",
    _models.Stream: "streams[]",
    _models.SharedIds: "shared",
    _models.Customer: "customers[]",
    _models.Entitlement: "entitlements[]",
    _models.Quotas: "quotas",
}


def _field_hint(name: str) -> str:
    """Where a field that is unknown here belongs, or the field name it is closest to."""
    owners = [section for model, section in _SECTIONS.items() if name in model.model_fields]
    if owners:
        return f"{name} is a field of {' and '.join(owners)}"
    every_name = sorted({field for model in _SECTIONS for field in model.model_fields})
    close = difflib.get_close_matches(name, every_name, n=1)
    return f"did you mean {close[0]}?" if close else "see the README's config reference"


_TOP_LEVEL = "the file must hold a mapping with project, provider_account and regions"


class YamlInt(int):
    """An integer with the text it was written as in the file (``012345670123`` read as octal)."""

    source: str


class _DuplicateKey(yaml.MarkedYAMLError):
    pass


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses repeated keys and remembers how integers were written."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue  # merged keys may be overridden: that is what a merge is for
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, (str, int, float, bool)) and key in first_line:
                raise _DuplicateKey(
                    problem=f"key {key!r} repeats the key at line {first_line[key]} in the same mapping "
                    "(YAML would keep only the last one); rename one or merge the two",
                    problem_mark=key_node.start_mark,
                )
            first_line.setdefault(key, line)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        value = YamlInt(super().construct_yaml_int(node))
        value.source = str(node.value)
        return value


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _StrictLoader.construct_yaml_int)


def _field_lines(node: yaml.Node, path: Path, lines: dict[Path, int], stack: set[int]) -> None:
    """The line of every field path in the document (a key's line for a mapping entry)."""
    if id(node) in stack:  # a recursive alias
        return
    stack.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                continue
            child = (*path, key_node.value)
            lines.setdefault(child, key_node.start_mark.line + 1)
            _field_lines(value_node, child, lines, stack)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.setdefault((*path, index), item.start_mark.line + 1)
            _field_lines(item, (*path, index), lines, stack)
    stack.discard(id(node))


def _decode(raw: bytes, source: str) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError(source, [Problem((), "the file is UTF-16; save it as UTF-8", line=1)])
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise ConfigError(
            source, [Problem((), "the file has a NUL byte: it is not a YAML text file", line=line)]
        )
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        why = f"byte 0x{raw[err.start]:02x} is not UTF-8; save the file as UTF-8"
        raise ConfigError(source, [Problem((), why, line=line)]) from None


def _yaml_problem(err: yaml.YAMLError) -> Problem:
    if isinstance(err, yaml.MarkedYAMLError) and err.problem_mark is not None:
        mark = err.problem_mark
        context = (
            f"{err.context} (line {err.context_mark.line + 1}): " if err.context and err.context_mark else ""
        )
        return Problem(
            (), f"not valid YAML: {context}{err.problem} (column {mark.column + 1})", line=mark.line + 1
        )
    return Problem((), f"not valid YAML: {err}")


def read_yaml(text: str, source: str) -> tuple[Any, dict[Path, int]]:
    """The document in ``text`` and the line of each field path in it."""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        data = None if node is None else loader.construct_document(node)
    except yaml.YAMLError as err:
        raise ConfigError(source, [_yaml_problem(err)]) from None
    finally:
        loader.dispose()
    lines: dict[Path, int] = {}
    if node is not None:
        _field_lines(node, (), lines, set())
    return data, lines


def validation_problems(err: ValidationError) -> list[Problem]:
    """The problems of a model validation, in the words of the rest of the messages."""
    return [_from_pydantic(e) for e in err.errors()]


def _from_pydantic(error: ErrorDetails) -> Problem:
    path: Path = tuple(p for p in error["loc"] if not str(p).startswith("function-"))
    context = error.get("ctx") or {}
    raised = context.get("error")
    if isinstance(raised, FieldProblem):
        return raised.problem.within(path)
    kind = error["type"]
    if kind == "missing":
        return Problem(path, "required field is missing")
    if kind == "extra_forbidden":
        return Problem(path, "unknown field", fix=_field_hint(str(path[-1])))
    why = _PLAIN_WORDS.get(kind, str(error["msg"]).removeprefix("Value error, ")).format(**context)
    if kind == "string_pattern_mismatch":
        why = PATTERN_MEANINGS.get(str(context.get("pattern", "")), why)
    value = error.get("input", NO_VALUE)
    if isinstance(value, (dict, list)):
        value = NO_VALUE
    return Problem(path, why, getattr(value, "source", value))


def parse_config(data: Any, source: str = "config", lines: dict[Path, int] | None = None) -> Config:
    """Validate loaded YAML data: the models, then the checks across fields.

    Raises :class:`ConfigError` with every problem the models find, or, when they pass, every
    problem the cross-checks find (those need valid fields, so they never repeat a field error).
    """
    lines = lines or {}
    if data is None:
        raise ConfigError(source, [Problem((), f"the file is empty: {_TOP_LEVEL}", line=1)])
    if not isinstance(data, dict):
        raise ConfigError(source, [Problem((), f"{_TOP_LEVEL}, not a {type(data).__name__}", line=1)])
    try:
        config = Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(source, validation_problems(err), lines) from None
    problems = config_problems(config)
    if problems:
        raise ConfigError(source, problems, lines)
    return config


def load_overlays(path: str | FilePath) -> list[Overlay]:
    """Read and validate a file of overlays (``overlays: [...]``, as in a config)."""
    source, data, lines = _read(path)
    if not isinstance(data, dict):
        raise ConfigError(
            source, [Problem((), "the file must hold one mapping with an overlays: list", line=1)]
        )
    try:
        overlays = OverlayFile.model_validate(data).overlays
    except ValidationError as err:
        raise ConfigError(source, validation_problems(err), lines) from None
    problems = overlays_problems(("overlays",), overlays)
    if problems:
        raise ConfigError(source, problems, lines)
    return overlays


def _read(path: str | FilePath) -> tuple[str, Any, dict[Path, int]]:
    path = FilePath(path)
    source = str(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError(source, [Problem((), f"cannot read the file: {err.strerror}")]) from None
    data, lines = read_yaml(_decode(raw, source), source)
    return source, data, lines


def load_config(path: str | FilePath) -> Config:
    """Read and validate a YAML config file; raise :class:`ConfigError` naming each problem."""
    source, data, lines = _read(path)
    return parse_config(data, source, lines)
