"""What the stored shadow comparisons say: match rates, differing fields, latency, verdicts.

Read by ``GET /gateway/shadow/report`` and by ``python -m gateway switch-check``.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import asyncpg

from gateway.settings import GatewaySettings
from shared_schemas.operations import OPERATIONS

REPORT_PATH = "/gateway/shadow/report"
# Contract paths the gateway answers itself (GatewayApp._own): no backend sees them.
GATEWAY_ANSWERED = frozenset({"/health", "/ready"})
TOP_FIELDS = 10
Verdict = Literal[
    "ready", "differs", "not enough traffic", "not mirrored (writes)", "answered by the gateway"
]
# Verdicts that do not hold a switch back (never mirrored: the contract suite covers those
# operations; switch-check's own check of the candidate sends no write).
PASSING = frozenset({"ready", "not mirrored (writes)", "answered by the gateway"})

_PER_OPERATION = """
SELECT candidate, operation_id, count(*) AS requests,
       count(*) FILTER (WHERE matched) AS matched,
       count(*) FILTER (WHERE error IS NOT NULL) AS errors,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY primary_ms) AS primary_p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY primary_ms) AS primary_p95,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY candidate_ms) AS candidate_p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY candidate_ms) AS candidate_p95
FROM ml_shadow_comparisons
WHERE kind = 'shadow' AND ($1::text IS NULL OR candidate = $1)
GROUP BY candidate, operation_id
"""
_FIELDS = """
SELECT c.candidate, c.operation_id, f.field, count(*) AS requests
FROM ml_shadow_comparisons c, jsonb_array_elements_text(c.fields) AS f(field)
WHERE c.kind = $2 AND ($1::text IS NULL OR c.candidate = $1)
GROUP BY c.candidate, c.operation_id, f.field
ORDER BY requests DESC, f.field
"""
_EXAMPLES = """
SELECT candidate, operation_id, field, path, rule, detail, request_id, primary_value,
       candidate_value
FROM ml_shadow_examples
WHERE ($1::text IS NULL OR candidate = $1)
ORDER BY id
"""
_ERRORS = """
SELECT DISTINCT ON (candidate, operation_id) candidate, operation_id, error
FROM ml_shadow_comparisons
WHERE kind = 'shadow' AND error IS NOT NULL AND ($1::text IS NULL OR candidate = $1)
ORDER BY candidate, operation_id, id DESC
"""


def _json(value: str | None) -> Any:
    return None if value is None else json.loads(value)  # asyncpg hands jsonb over as text


def _ms(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


async def build_report(
    pool: asyncpg.Pool,
    settings: GatewaySettings,
    candidate: str | None,
    dropped: dict[str, dict[str, int]] | None = None,
) -> dict[str, Any]:
    """The report of one candidate (every candidate stored when None), per operation.

    ``dropped``: the sampled requests of ``candidate`` that this gateway process did not
    compare, per operation and reason (in-flight bound, full comparison queue). They are
    counters of the process, not stored rows: the report shows them as
    ``dropped_by_this_gateway`` next to the stored comparisons.
    """
    async with pool.acquire() as conn:
        rows = await conn.fetch(_PER_OPERATION, candidate)
        fields = await conn.fetch(_FIELDS, candidate, "shadow")
        noise = await conn.fetch(_FIELDS, None, "noise")
        examples = await conn.fetch(_EXAMPLES, candidate)
        errors = await conn.fetch(_ERRORS, candidate)
    candidates: dict[str, dict[str, Any]] = {}
    report_drops: dict[str, dict[str, dict[str, int]]] = {}
    for row in rows:
        operations = candidates.setdefault(row["candidate"], {})
        operations[row["operation_id"]] = {
            "requests": row["requests"],
            "matched": row["matched"],
            "errors": row["errors"],
            "match_rate": round(row["matched"] / row["requests"], 4),
            "latency_ms": {
                "primary": {"p50": _ms(row["primary_p50"]), "p95": _ms(row["primary_p95"])},
                "candidate": {
                    "p50": _ms(row["candidate_p50"]),
                    "p95": _ms(row["candidate_p95"]),
                },
            },
            "top_fields": [],
            "noise_fields": sorted(
                {n["field"] for n in noise if n["operation_id"] == row["operation_id"]}
            ),
            "last_error": None,
        }
    for row in errors:
        candidates[row["candidate"]][row["operation_id"]]["last_error"] = row["error"]
    by_field: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in fields:
        top = candidates[row["candidate"]][row["operation_id"]]["top_fields"]
        if len(top) < TOP_FIELDS:
            entry = {"field": row["field"], "requests": row["requests"], "examples": []}
            top.append(entry)
            by_field[(row["candidate"], row["operation_id"], row["field"])] = entry
    for row in examples:
        shown = by_field.get((row["candidate"], row["operation_id"], row["field"]))
        if shown is not None:
            shown["examples"].append(
                {
                    "path": row["path"],
                    "rule": row["rule"],
                    "detail": row["detail"],
                    "request_id": row["request_id"],
                    "primary": _json(row["primary_value"]),
                    "candidate": _json(row["candidate_value"]),
                }
            )
    if candidate is not None and dropped:
        candidates.setdefault(candidate, {})
        shown = {name: dict(reasons) for name, reasons in sorted(dropped.items())}
        report_drops[candidate] = shown
    return {
        "thresholds": {
            "min_requests": settings.switch_min_requests,
            "min_match_rate": settings.switch_min_match_rate,
        },
        "candidates": {
            name: {
                "operations": operations,
                "verdicts": verdicts(operations, settings),
                "dropped_by_this_gateway": report_drops.get(name, {}),
            }
            for name, operations in candidates.items()
        },
    }


def verdicts(operations: dict[str, dict[str, Any]], settings: GatewaySettings) -> dict[str, str]:
    """Per operation of the registry: ready, differs, not enough traffic, or not mirrored."""
    out: dict[str, str] = {}
    for op in OPERATIONS:
        seen = operations.get(op.operation_id)
        verdict: Verdict
        if op.writes:
            verdict = "not mirrored (writes)"
        elif op.path in GATEWAY_ANSWERED:
            verdict = "answered by the gateway"
        elif seen is None or seen["requests"] < settings.switch_min_requests:
            verdict = "not enough traffic"
        elif seen["match_rate"] < settings.switch_min_match_rate:
            verdict = "differs"
        else:
            verdict = "ready"
        out[op.operation_id] = verdict
    return out
