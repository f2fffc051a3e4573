"""Project-specific checks: the one error shape, no 5xx except 502/503/504, and a schema-valid
request accepted unless its answer is one of the operation's declared refusals."""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from schemathesis.core.failures import Failure, Severity
from schemathesis.specs.openapi.checks import positive_data_acceptance

# 502 backend unreachable, 503 not ready / provider missing, 504 backend timeout: the only 5xx
# a conforming server may answer (any other is a bug).
ALLOWED_5XX = frozenset({502, 503, 504})

# The names the engine knows our checks by (the function names below).
PROJECT_CHECKS = ("error_response_shape", "no_internal_error", "accepted_or_declared_refusal")
# The spec's per-operation list of refusals of schema-valid requests (shared_schemas.refusals).
REFUSALS_EXTENSION = "x-refusals"
# Judged by accepted_or_declared_refusal instead, on the operations that declare refusals.
BUILTIN_ACCEPTANCE_CHECK = "positive_data_acceptance"


class ErrorShapeViolation(Failure):
    """A non-2xx response whose body is not the project's ErrorResponse."""

    code = "ST911"
    checks = ("error_response_shape",)
    kind_title = "Error response does not have the ErrorResponse shape"

    __slots__ = ("status_code",)

    def __init__(self, *, operation: str, status_code: int, message: str) -> None:
        super().__init__(operation=operation, message=message, severity=Severity.HIGH)
        self.status_code = status_code

    @property
    def _unique_key(self) -> str:
        return str(self.status_code)


class InternalServerError(Failure):
    """A 5xx the project never intends (anything but 502/503/504)."""

    code = "ST912"
    checks = ("no_internal_error",)
    kind_title = "Internal server error"

    __slots__ = ("status_code",)

    def __init__(self, *, operation: str, status_code: int, message: str) -> None:
        super().__init__(operation=operation, message=message, severity=Severity.CRITICAL)
        self.status_code = status_code

    @property
    def _unique_key(self) -> str:
        return str(self.status_code)


def error_shape_problem(body: bytes) -> str | None:
    """Why `body` is not `{"error": {"code", "message", "details"}, "request_id"}`, or None."""
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        snippet = body[:80].decode("utf-8", "replace")
        return f"body is not JSON: {snippet!r}"
    if not isinstance(data, dict):
        return f"body is a JSON {type(data).__name__}, not an object"
    error = data.get("error")
    if not isinstance(error, dict):
        return "missing object field `error`"
    problems = [
        f"`error.{name}` must be a {kind.__name__}"
        for name, kind in (("code", str), ("message", str), ("details", list))
        if not isinstance(error.get(name), kind)
    ]
    if not isinstance(data.get("request_id"), str):
        problems.append("`request_id` must be a string")
    return "; ".join(problems) or None


def error_response_shape(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> bool | None:
    """Every non-2xx (and non-3xx) response carries the ErrorResponse body."""
    status = response.status_code
    if status < 400:
        return None
    problem = error_shape_problem(response.content or b"")
    if problem is not None:
        raise ErrorShapeViolation(
            operation=case.operation.label,
            status_code=status,
            message=f"{status} response: {problem}",
        )
    return None


def no_internal_error(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> bool | None:
    """No input may produce a 5xx other than 502/503/504: a 500 is always a bug."""
    status = response.status_code
    if status >= 500 and status not in ALLOWED_5XX:
        request_id = _request_id(response.content or b"")
        suffix = f" (request_id {request_id})" if request_id else ""
        raise InternalServerError(
            operation=case.operation.label,
            status_code=status,
            message=f"answered {status}; only 502, 503 and 504 are allowed{suffix}",
        )
    return None


def declared_refusal(refusals: Any, status: int, body: bytes) -> dict[str, Any] | None:
    """The entry of an operation's `x-refusals` this answer is, or None: same status, same
    `error.code`, and at least one detail, every one of the declared `type`."""
    if not isinstance(refusals, list):
        return None
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None
    details = error.get("details")
    if not isinstance(details, list) or not details:
        return None
    types = {detail.get("type") if isinstance(detail, dict) else None for detail in details}
    for refusal in refusals:
        if (
            isinstance(refusal, dict)
            and refusal.get("status") == status
            and refusal.get("code") == error.get("code")
            and types == {refusal.get("detail_type")}
        ):
            return refusal
    return None


def accepted_or_declared_refusal(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> bool | None:
    """positive_data_acceptance for an operation that declares `x-refusals`: a schema-valid
    request is accepted, or answered with exactly one of its declared refusals.

    Elsewhere it does nothing (schemathesis's own check runs there; here it is switched off
    per operation by conformance.build_config).
    """
    refusals = case.operation.definition.raw.get(REFUSALS_EXTENSION)
    if not refusals:
        return None
    if declared_refusal(refusals, response.status_code, response.content or b"") is not None:
        return None
    return positive_data_acceptance(ctx, response, case)


def _request_id(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    value = data.get("request_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def register() -> None:
    """Register the project checks with schemathesis (idempotent; called before each run)."""
    schemathesis.check(error_response_shape)
    schemathesis.check(no_internal_error)
    schemathesis.check(accepted_or_declared_refusal)
