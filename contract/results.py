"""Plain result records shared by the runner, the probes, the comparer and the reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}


@dataclass(slots=True)
class FailureRecord:
    """One distinct failure found on an operation."""

    check: str
    title: str
    message: str
    code: str = ""
    status_code: int | None = None
    reproduce: str = ""
    severity: str = "medium"

    def summary(self) -> str:
        status = f" [{self.status_code}]" if self.status_code is not None else ""
        first_line = self.message.strip().splitlines()[0] if self.message.strip() else ""
        detail = f": {first_line}" if first_line else ""
        return f"{self.check}{status} {self.title}{detail}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "code": self.code,
            "title": self.title,
            "message": self.message,
            "status_code": self.status_code,
            "severity": self.severity,
            "reproduce": self.reproduce,
        }


@dataclass(slots=True)
class OperationResult:
    """Everything the run learned about one operation (or one probe)."""

    label: str
    cases: int = 0
    failing_cases: int = 0
    failures: list[FailureRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    phases: set[str] = field(default_factory=set)
    status_codes: dict[int, int] = field(default_factory=dict)
    _seen: set[tuple[str, str, str]] = field(default_factory=set, repr=False)

    @property
    def passed(self) -> bool:
        return not self.failures and not self.errors

    def add_failure(self, record: FailureRecord) -> None:
        """Keep one record per distinct (check, title, first message line)."""
        key = (record.check, record.title, record.message.strip().split("\n", 1)[0])
        if key not in self._seen:
            self._seen.add(key)
            self.failures.append(record)

    def add_error(self, message: str) -> None:
        """Keep each distinct error once (a dead server repeats the same one per case)."""
        if message not in self.errors:
            self.errors.append(message)

    def first_failure(self) -> str:
        """The most severe failure (first found among equals), else the first error."""
        if self.failures:
            worst = min(self.failures, key=lambda f: SEVERITY_RANK.get(f.severity, 9))
            return worst.summary()
        if self.errors:
            return f"error: {self.errors[0].splitlines()[0]}"
        return ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "operation": self.label,
            "passed": self.passed,
            "cases": self.cases,
            "failing_cases": self.failing_cases,
            "phases": sorted(self.phases),
            "status_codes": {str(k): v for k, v in sorted(self.status_codes.items())},
            "failures": [failure.as_dict() for failure in self.failures],
            "errors": list(self.errors),
        }


@dataclass(slots=True)
class PromiseResult:
    """One promise of one operation (a behaviour test): how often it was checked, how it broke."""

    name: str  # "<operationId>/<promise id>"
    operation: str  # "POST /path"
    kind: str
    statement: str
    checked: int = 0
    failures: list[FailureRecord] = field(default_factory=list)
    skip_reason: str = ""
    _seen: set[str] = field(default_factory=set, repr=False)

    @property
    def status(self) -> str:
        """ "failed", "passed" (checked at least once, never broken) or "skipped"."""
        if self.failures:
            return "failed"
        return "passed" if self.checked else "skipped"

    def record(self, problem: str | None, reproduce: str) -> None:
        """Count one check; keep the first few distinct problems with their reproduction."""
        self.checked += 1
        if problem is None or problem in self._seen or len(self.failures) >= 3:
            return
        self._seen.add(problem)
        self.failures.append(
            FailureRecord(
                check=self.name,
                title=f"Promise {self.name} broken",
                message=problem,
                reproduce=reproduce,
                severity="high",
            )
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "operation": self.operation,
            "kind": self.kind,
            "statement": self.statement,
            "status": self.status,
            "checked": self.checked,
            "skip_reason": self.skip_reason if self.status == "skipped" else "",
            "failures": [failure.as_dict() for failure in self.failures],
        }
