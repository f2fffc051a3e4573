"""Send the same seeded cases to two servers and report where they answer differently.

Differences are of three kinds: the status, conformance to the spec, and the values of a
successful JSON answer, judged field by field by the operation's comparator
(``shared_schemas.comparators``: cosine for embeddings, tolerances for scores, top-k for
rankings, ...). Values are not compared for operations that write: both servers share
one database, so the second one sees what the first one wrote. For operations declared
non-deterministic, the first server is asked twice and the fields on which it disagrees
with itself are not reported.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from contract.conformance import RunOptions, load_schema
from contract.read_only import writes
from contract.spec import SpecSource
from shared_schemas.comparators import COMPARATORS, Comparator, FieldDiff
from shared_schemas.operations import by_id

# Coverage cases enumerate boundaries deterministically; cap them so big schemas stay quick.
MAX_COVERAGE_CASES = 40


@dataclass(slots=True)
class CaseDiff:
    """One case on which the two servers disagree."""

    operation: str
    request: str
    status_a: int | None
    status_b: int | None
    conforms_a: bool
    conforms_b: bool
    problem_a: str
    problem_b: str
    fields: list[FieldDiff] = field(default_factory=list)  # value differences (same status)

    def as_dict(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "request": self.request,
            "status_a": self.status_a,
            "status_b": self.status_b,
            "conforms_a": self.conforms_a,
            "conforms_b": self.conforms_b,
            "problem_a": self.problem_a,
            "problem_b": self.problem_b,
            "fields": [diff.as_dict() for diff in self.fields],
        }


@dataclass(slots=True)
class CompareResult:
    """Per-operation agreement between the two servers."""

    label: str
    cases: int = 0
    status_diffs: int = 0
    conformance_diffs: int = 0
    value_diffs: int = 0
    diffs: list[CaseDiff] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.diffs and not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "operation": self.label,
            "identical": self.identical,
            "cases": self.cases,
            "status_differences": self.status_diffs,
            "conformance_differences": self.conformance_diffs,
            "value_differences": self.value_diffs,
            "differences": [diff.as_dict() for diff in self.diffs],
            "errors": list(self.errors),
        }


@dataclass(slots=True)
class CompareOutcome:
    url_a: str
    url_b: str
    operations: list[CompareResult]
    duration_s: float

    @property
    def identical(self) -> bool:
        return all(result.identical for result in self.operations)


def compare(options: RunOptions, spec: SpecSource, url_b: str) -> CompareOutcome:
    """Generate cases once (fixed seed), send each to both servers, diff status and conformance."""
    from schemathesis.core.result import Ok

    schema = load_schema(options, spec)
    started = time.monotonic()
    results = []
    for item in schema.get_all_operations():
        if not isinstance(item, Ok):
            continue
        operation = item.ok()
        result = CompareResult(label=operation.label)
        values = _values_rule(operation)
        try:
            cases = generate_cases(schema, operation, options)
        except Exception as exc:  # generation problems are reported, not fatal
            result.errors.append(f"case generation failed: {type(exc).__name__}: {exc}")
            cases = []
        for case in cases:
            _compare_case(case, options, url_b, result, values)
        results.append(result)
    return CompareOutcome(
        url_a=options.base_url,
        url_b=url_b,
        operations=results,
        duration_s=time.monotonic() - started,
    )


def generate_cases(schema: Any, operation: Any, options: RunOptions) -> list[Any]:
    """Deterministic coverage cases plus seeded positive and negative fuzzed cases."""
    from schemathesis import GenerationMode

    cases: list[Any] = []
    coverage = schema.iter_coverage_cases(
        operation,
        generation_modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        generation_config=schema.config.generation_for(operation=operation),
    )
    for index, case in enumerate(coverage):
        if index >= MAX_COVERAGE_CASES:
            break
        cases.append(case)
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        cases.extend(_draw(operation, mode, options))
    return cases


def _draw(operation: Any, mode: Any, options: RunOptions) -> list[Any]:
    from hypothesis import HealthCheck, Phase, given, seed, settings
    from hypothesis.errors import Unsatisfiable

    drawn: list[Any] = []

    @seed(options.seed)
    @settings(
        max_examples=options.max_examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(operation.as_strategy(generation_mode=mode))
    def collect(case: Any) -> None:
        drawn.append(case)

    # Unsatisfiable: nothing to negate (no parameters, no body), so only positive cases exist.
    with contextlib.suppress(Unsatisfiable):
        collect()
    return drawn


def _values_rule(operation: Any) -> Comparator | None:
    """The comparator for an operation's values; None when they are not compared (writes)."""
    op_id = str(operation.definition.raw.get("operationId") or "")
    if writes(op_id, str(operation.method)):
        return None
    return COMPARATORS[op_id] if op_id in by_id() else Comparator()


def _call(case: Any, url: str, options: RunOptions) -> Any:
    return case.call(base_url=url, headers=dict(options.headers), timeout=options.request_timeout)


def _compare_case(
    case: Any, options: RunOptions, url_b: str, result: CompareResult, values: Comparator | None
) -> None:
    answers = []
    responses: list[Any] = []
    for url in (options.base_url, url_b):
        try:
            response = _call(case, url, options)
        except Exception as exc:  # network errors count as a differing answer
            answers.append((None, False, f"request failed: {type(exc).__name__}"))
            responses.append(None)
            continue
        answers.append((response.status_code, *_conformance(case, response)))
        responses.append(response)
    result.cases += 1
    (status_a, ok_a, why_a), (status_b, ok_b, why_b) = answers
    fields: list[FieldDiff] = []
    if status_a == status_b and ok_a == ok_b:
        if values is None or status_a is None or status_a >= 300:
            return
        fields = _value_diffs(case, options, values, responses[0], responses[1])
        if not fields:
            return
    result.status_diffs += status_a != status_b
    result.conformance_diffs += ok_a != ok_b
    result.value_diffs += bool(fields)
    result.diffs.append(
        CaseDiff(
            operation=result.label,
            request=_describe(case),
            status_a=status_a,
            status_b=status_b,
            conforms_a=ok_a,
            conforms_b=ok_b,
            problem_a=why_a,
            problem_b=why_b,
            fields=fields,
        )
    )


def _value_diffs(
    case: Any, options: RunOptions, comparator: Comparator, response_a: Any, response_b: Any
) -> list[FieldDiff]:
    """Field-level differences of two successful answers (JSON only), beyond A's own noise."""
    body_a, body_b = _json(response_a), _json(response_b)
    if body_a is _NOT_JSON or body_b is _NOT_JSON:
        return []
    request = case.body if isinstance(case.body, dict) else None
    found = comparator.diff(body_a, body_b, request)
    if found and not comparator.deterministic:
        try:
            again = _json(_call(case, options.base_url, options))
        except Exception:  # no second answer: nothing is known about the noise
            return found
        noisy = {diff.pattern for diff in comparator.diff(body_a, again, request)}
        found = [diff for diff in found if diff.pattern not in noisy]
    return found


_NOT_JSON = object()


def _json(response: Any) -> Any:
    if response is None:
        return _NOT_JSON
    media = response.headers.get("content-type", "")
    media = (media[0] if isinstance(media, list) else media).split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        return _NOT_JSON
    try:
        return response.json()
    except ValueError:
        return _NOT_JSON


def _conformance(case: Any, response: Any) -> tuple[bool, str]:
    """Whether the response matches the spec (status, content type, schema, error shape)."""
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    from contract.checks import error_response_shape

    checks = [
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
        error_response_shape,
    ]
    try:
        case.validate_response(response, checks=checks)
    except BaseExceptionGroup as group:
        return False, "; ".join(sorted({_title(exc) for exc in group.exceptions}))
    except AssertionError as exc:
        return False, _title(exc)
    return True, ""


def _title(exc: BaseException) -> str:
    title = getattr(exc, "title", None)
    return str(title) if title else (str(exc).splitlines() or [type(exc).__name__])[0]


def _describe(case: Any) -> str:
    """A short, human-readable form of the request: method, path, query and body."""
    parts = [f"{case.method} {case.formatted_path}"]
    if case.query:
        parts.append(f"query={case.query!r}")
    if case.body is not None and not _is_unset(case.body):
        body = repr(case.body)
        parts.append(f"body={body[:200]}{'...' if len(body) > 200 else ''}")
    return " ".join(parts)


def _is_unset(value: Any) -> bool:
    return type(value).__name__ == "NotSet"
