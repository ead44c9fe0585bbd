"""Every option's help names its default: `--help` of every command, walked from the parser."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from mcastkit.cli import build_parser


def _parsers(
    parser: argparse.ArgumentParser, prog: str = "mcastkit"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{prog} {name}")


def _shown(default: object) -> str:
    if isinstance(default, float) and default.is_integer():
        default = int(default)
    return ",".join(str(d) for d in default) if type(default) in (list, tuple) else str(default)


def test_every_option_with_a_default_names_it_in_its_help() -> None:
    missing = []
    parsers = list(_parsers(build_parser()))
    assert len(parsers) > 20
    for prog, parser in parsers:
        text = " ".join(parser.format_help().split())
        for action in parser._actions:
            default = action.default
            if not action.option_strings or action.help in (None, argparse.SUPPRESS):
                continue
            if default is None or default is False or default is argparse.SUPPRESS:
                continue
            if "default" not in str(action.help) and _shown(default) not in text:
                missing.append(f"{prog} {action.option_strings[0]} (default {default!r})")
    assert missing == []


def test_every_option_has_help() -> None:
    bare = [
        f"{prog} {action.option_strings[0]}"
        for prog, parser in _parsers(build_parser())
        for action in parser._actions
        if action.option_strings and not action.help
    ]
    assert bare == []
