"""The ``mcastkit`` command: a thin dispatcher over one module per command group.

Each module in :data:`COMMAND_MODULES` exposes ``register(subparsers)``, which adds its
sub-command and sets ``handler`` (a callable taking the parsed namespace and the
:class:`Console`, returning an :class:`ExitStatus`). Argument definitions stay apart
from the logic they call. A handler raises a :class:`McastkitError` for anything the
operator must fix; :func:`main` is the one place that maps it to a message and a status.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from mcastkit import __version__
from mcastkit.console import Console
from mcastkit.errors import McastkitError
from mcastkit.exit import ExitStatus

__all__ = ["COMMAND_MODULES", "Console", "build_parser", "main"]

COMMAND_MODULES: tuple[str, ...] = (
    "mcastkit.commands.validate",
    "mcastkit.commands.summary",
    "mcastkit.commands.plan",
    "mcastkit.commands.relay",
    "mcastkit.commands.probe",
    "mcastkit.commands.lab",
    "mcastkit.commands.onboard",
    "mcastkit.commands.stream",
    "mcastkit.commands.overlay",
    "mcastkit.commands.doctor",
)


class _DefaultsHelp(argparse.HelpFormatter):
    """Every option's help ends with its default, unless the help already names it (or there is
    none worth naming: off, unset)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        # By identity: 0 and 0.0 equal False, and a default of 0 is worth naming.
        if default is None or default is False or default is argparse.SUPPRESS or not action.option_strings:
            return text
        if isinstance(default, float) and default.is_integer():
            default = int(default)
        shown = ",".join(str(d) for d in default) if type(default) in (list, tuple) else str(default)
        if "default" in text or f"({shown})" in text:
            return text
        return f"{text} (default {shown})".strip()


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _DefaultsHelp)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(ExitStatus.BAD_INPUT, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mcastkit", description="Deliver IP multicast into AWS and across accounts.")
    parser.add_argument("--version", action="version", version=f"mcastkit {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> int:
    console = console or Console()
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args, console))
    except McastkitError as err:
        # The one place an error becomes an exit status; a config error renders its own lines.
        console.error(err.render())
        return err.status
    except KeyboardInterrupt:
        console.error("interrupted")
        return ExitStatus.INTERRUPTED
