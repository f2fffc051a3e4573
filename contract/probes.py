"""One-off requests outside the spec: unknown routes must answer 404/405 in the error shape."""

from __future__ import annotations

import re
from typing import Any

import httpx

from contract.checks import error_shape_problem
from contract.results import FailureRecord, OperationResult

UNKNOWN_PATH = "/contract-probe/no-such-route"
PROBE_METHODS = ("put", "patch", "delete", "post", "get")
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def run_probes(
    base_url: str, raw_spec: dict[str, Any], *, headers: dict[str, str], timeout: float
) -> list[OperationResult]:
    """Probe an unknown path (expect 404) and an undeclared method on a known path (expect 405)."""
    targets = [("GET", UNKNOWN_PATH, 404)]
    undeclared = _undeclared_method(raw_spec)
    if undeclared is not None:
        targets.append((undeclared[0], undeclared[1], 405))
    results = []
    with httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout) as client:
        for method, path, expected in targets:
            results.append(_probe(client, method, path, expected))
    return results


def _probe(client: httpx.Client, method: str, path: str, expected: int) -> OperationResult:
    result = OperationResult(label=f"PROBE {method} {path}", phases={"probe"})
    reproduce = f"curl -X {method} '{client.base_url}{path}'"
    try:
        response = client.request(method, path)
    except httpx.HTTPError as exc:
        result.add_error(f"{type(exc).__name__}: {exc}")
        return result
    result.cases = 1
    result.status_codes[response.status_code] = 1
    problems = []
    if response.status_code != expected:
        problems.append(
            FailureRecord(
                check="unknown_route_status",
                title=f"Expected {expected} for an unknown route",
                message=f"got {response.status_code}",
                status_code=response.status_code,
                reproduce=reproduce,
                severity="high",
            )
        )
    if response.status_code >= 400:
        shape = error_shape_problem(response.content)
        if shape is not None:
            problems.append(
                FailureRecord(
                    check="error_response_shape",
                    title="Error response does not have the ErrorResponse shape",
                    message=f"{response.status_code} response: {shape}",
                    status_code=response.status_code,
                    reproduce=reproduce,
                    severity="high",
                )
            )
    if problems:
        result.failing_cases = 1
        for record in problems:
            result.add_failure(record)
    return result


def _undeclared_method(raw_spec: dict[str, Any]) -> tuple[str, str] | None:
    """A (METHOD, concrete path) the spec does not declare, preferring paths without parameters."""
    paths = raw_spec.get("paths") or {}
    ordered = sorted(paths, key=lambda p: ("{" in p, p))
    for path in ordered:
        item = paths[path] or {}
        declared = {m.lower() for m in item if m.lower() in HTTP_METHODS}
        if not declared:
            continue
        for method in PROBE_METHODS:
            if method not in declared:
                return method.upper(), re.sub(r"\{[^}/]+\}", "probe", path)
    return None
