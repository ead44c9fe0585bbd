"""What ``mcastkit doctor`` found: one :class:`Finding` per fact, and the :class:`Diagnosis` that
carries them across a process boundary (``--json``, and back from a network namespace).

A finding owns its two wire formats: :meth:`Finding.line` for people, :meth:`Finding.to_json`
for scripts; :meth:`Diagnosis.from_json` reads back what ``--json`` printed, checking every key.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """``problem``: multicast cannot arrive until it is fixed (exit 1); ``warn``: a hazard or a
    degraded path; ``ok``: checked and fine (said, so a reader knows what was checked)."""

    PROBLEM = "problem"
    WARN = "warn"
    OK = "ok"

    @property
    def label(self) -> str:
        return {"problem": "PROBLEM", "warn": "WARN", "ok": "ok"}[self.value]


_LABEL_WIDTH = max(len(s.label) for s in Severity)
_KEYS = ("severity", "check", "subject", "message", "fix")


class DiagnosisError(ValueError):
    """A document is not what ``mcastkit doctor --json`` prints; the message says what is wrong."""


@dataclass(frozen=True)
class Finding:
    """One fact about the path multicast takes to this host.

    ``check`` names the check (``igmp-version``, ``aws-security-group``...), ``subject`` what it is
    about (an interface, a group, a rule), ``message`` what is wrong or what was seen, ``fix``
    a command or config change that fixes it (empty when there is nothing to do).
    """

    severity: Severity
    check: str
    subject: str
    message: str
    fix: str = ""

    def line(self) -> str:
        """``PROBLEM  eth1 IGMP version: IGMPv3 is in effect ...; fix: sysctl -w ...``"""
        text = f"{self.severity.label:<{_LABEL_WIDTH}}  {self.subject}: {self.message}"
        return f"{text}; fix: {self.fix}" if self.fix else text

    def to_json(self) -> dict[str, str]:
        return {
            "severity": self.severity.value,
            "check": self.check,
            "subject": self.subject,
            "message": self.message,
            "fix": self.fix,
        }

    @classmethod
    def from_json(cls, data: Any) -> Finding:
        if not isinstance(data, Mapping) or sorted(data) != sorted(_KEYS):
            raise DiagnosisError(f"a finding has the keys {', '.join(_KEYS)}: got {data!r}")
        if not all(isinstance(data[key], str) for key in _KEYS):
            raise DiagnosisError(f"every value of a finding is a string: got {data!r}")
        try:
            severity = Severity(data["severity"])
        except ValueError:
            raise DiagnosisError(
                f"severity {data['severity']!r}: expected one of {', '.join(Severity)}"
            ) from None
        return cls(severity, data["check"], data["subject"], data["message"], data["fix"])

    def within(self, namespace: str) -> Finding:
        """The finding as seen from outside network namespace ``namespace``."""
        return replace(self, subject=f"netns {namespace}: {self.subject}")


@dataclass(frozen=True)
class Diagnosis:
    """Every finding of one run, and the error that stopped it early, if one did."""

    findings: tuple[Finding, ...]
    #: The one-line error that ended the run before every check was done (``None``: all ran).
    error: str | None = None

    @classmethod
    def of(cls, findings: Iterable[Finding], error: str | None = None) -> Diagnosis:
        return cls(tuple(findings), error)

    @property
    def problems(self) -> int:
        return sum(f.severity is Severity.PROBLEM for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.severity is Severity.WARN for f in self.findings)

    def summary(self) -> str:
        """``2 problems, 1 warning, 5 ok``"""
        ok = len(self.findings) - self.problems - self.warnings
        return (
            f"{self.problems} problem{'s' * (self.problems != 1)}, "
            f"{self.warnings} warning{'s' * (self.warnings != 1)}, {ok} ok"
        )

    def to_json(self) -> str:
        document: dict[str, Any] = {
            "findings": [f.to_json() for f in self.findings],
            "problems": self.problems,
        }
        if self.error is not None:
            document["error"] = self.error
        return json.dumps(document)

    @classmethod
    def from_json(cls, text: str) -> Diagnosis:
        try:
            document = json.loads(text)
        except ValueError as err:
            raise DiagnosisError(f"not JSON ({err})") from None
        if not isinstance(document, dict) or not isinstance(document.get("findings"), list):
            raise DiagnosisError("expected an object with a list under 'findings'")
        error = document.get("error")
        if error is not None and not isinstance(error, str):
            raise DiagnosisError(f"'error' is a string: got {error!r}")
        diagnosis = cls.of((Finding.from_json(item) for item in document["findings"]), error)
        if document.get("problems") != diagnosis.problems:
            raise DiagnosisError(
                f"'problems' is {document.get('problems')!r}, but {diagnosis.problems} finding(s) "
                "are problems"
            )
        return diagnosis
