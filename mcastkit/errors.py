"""The root of every error a command reports to the operator, and the exit status it carries.

A module raises the subclass that says whose fault it is; :func:`mcastkit.cli.main` is the one
place that turns it into a message and an exit status. Nothing here imports beyond the
standard library, so every layer can raise these.
"""

from __future__ import annotations

from mcastkit.exit import ExitStatus


class McastkitError(Exception):
    """An error shown to the operator as it is: ``render()`` is the text, ``status`` the exit status."""

    status: ExitStatus = ExitStatus.FAILURE

    def render(self) -> str:
        return str(self)


class BadInput(McastkitError):
    """The input is wrong: a config file, an argument, an unknown customer or region (exit 2)."""

    status: ExitStatus = ExitStatus.BAD_INPUT


class EnvironmentFailure(McastkitError):
    """The environment stopped the command: no root, no credentials, a refused bind (exit 3)."""

    status: ExitStatus = ExitStatus.ENVIRONMENT
