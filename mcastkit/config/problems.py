"""What is wrong with a config file, as structured problems, and how they are shown.

A check returns :class:`Problem` values (field path, why, the bad value, the fix); only
:meth:`ConfigError.render` turns them into text, one line each, with the file and line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mcastkit.errors import BadInput

Path = tuple[str | int, ...]
#: Marks a problem whose message names the value itself (or that has none to show).
NO_VALUE: Any = object()


def path_text(path: Path) -> str:
    """One style for every field path: ``regions.eu-west-2.domains[0].groups[1].address``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def shown(value: Any) -> str:
    """A bad value as the operator wrote it: strings bare, the rest as Python prints them."""
    return value if isinstance(value, str) else repr(value)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config: where (``path``), why, the value, and how to fix it."""

    path: Path
    why: str
    value: Any = NO_VALUE
    fix: str = ""
    #: The file's line, where the problem is not about a field (YAML syntax, encoding).
    line: int | None = None

    @property
    def where(self) -> str:
        return path_text(self.path)

    def text(self) -> str:
        """``path: value why; fix`` on one line; a ``why`` that names the value stands alone."""
        got = "" if self.value is NO_VALUE else f" (got {shown(self.value)})"
        fix = f"; {self.fix}" if self.fix else ""
        where = f"{self.where}: " if self.path else ""
        return f"{where}{self.why}{got}{fix}"

    def within(self, prefix: Path) -> Problem:
        return Problem((*prefix, *self.path), self.why, self.value, self.fix, self.line)


class FieldProblem(ValueError):
    """Raised by a field validator: pydantic keeps it, and the loader reads it back as a Problem.

    ``path`` is relative to the field; ``why`` names the value when ``value`` is not given.
    """

    def __init__(self, why: str, *, value: Any = NO_VALUE, fix: str = "", path: Path = ()) -> None:
        super().__init__(why)
        self.problem = Problem(path, why, value, fix)


@dataclass(eq=False)
class ConfigError(BadInput):
    """A configuration that cannot be used; :meth:`render` shows every problem on a line of its own."""

    source: str
    problems: Sequence[Problem]
    lines: Mapping[Path, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(f"{self.source}: " + "; ".join(p.text() for p in self.problems))

    def line_of(self, path: Path) -> int | None:
        """The line of ``path`` in the file, or of the nearest enclosing field that has one."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None

    def render(self) -> str:
        count = len(self.problems)
        head = f"{self.source}: {count} problem{'s' if count != 1 else ''}"
        rows = []
        for problem in self.problems:
            line = problem.line or self.line_of(problem.path)
            rows.append(f"{self.source}{f':{line}' if line else ''}: {problem.text()}")
        return "\n".join([head, *rows]) if count > 1 else rows[0] if rows else head

    @property
    def messages(self) -> list[str]:
        """Each problem's text without the file name (what tests and callers compare)."""
        return [p.text() for p in self.problems]
