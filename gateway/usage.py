"""Usage read-back: requests, errors and credits per key, organisation, day and category.

Read from ``ml_service_requests`` (one row per request, written by the backends), grouped
by the API key, organisation, UTC day and route group of the endpoint. The same query
serves ``GET /gateway/usage`` (an admin key) and ``python -m gateway usage``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg

from shared_schemas.operations import group_of_path

OTHER = "other"  # health, docs and unknown paths, as in ml_service_usage.endpoint_category
MAX_DAYS = 366  # one query never scans more than a year of request rows
DEFAULT_DAYS = 30
QUERY_TIMEOUT_S = 30.0  # a year of rows for every key is a large scan; key lookups use 1 s


class UsageQueryError(ValueError):
    """A filter that cannot be used; the message says which and why (a 400)."""


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """Days ``since`` to ``until`` (both included, UTC), optionally one organisation or key."""

    since: date
    until: date
    organization_id: str | None = None
    api_key_id: str | None = None

    @classmethod
    def parse(cls, params: Mapping[str, str], today: date | None = None) -> UsageQuery:
        """From query parameters (``since``, ``until`` as YYYY-MM-DD, ``organization_id``,
        ``api_key_id``); the last 30 days by default."""
        unknown = set(params) - {"since", "until", "organization_id", "api_key_id"}
        if unknown:
            raise UsageQueryError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
        today = today or datetime.now(UTC).date()
        until = _day(params, "until") or today
        since = _day(params, "since") or until - timedelta(days=DEFAULT_DAYS - 1)
        if since > until:
            raise UsageQueryError("since must not be after until")
        if (until - since).days >= MAX_DAYS:
            raise UsageQueryError(f"at most {MAX_DAYS} days per query")
        return cls(
            since, until, params.get("organization_id") or None, params.get("api_key_id") or None
        )


def _day(params: Mapping[str, str], name: str) -> date | None:
    value = params.get(name)
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageQueryError(f"{name} must be a date (YYYY-MM-DD), not {value[:40]!r}") from None


@dataclass(frozen=True, slots=True)
class UsageRow:
    api_key_id: str | None
    organization_id: str | None
    day: str
    category: str
    requests: int
    errors: int
    credits: int

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


_SQL = """
SELECT api_key_id, organization_id, (created_at AT TIME ZONE 'UTC')::date AS day, endpoint,
       count(*) AS requests, count(*) FILTER (WHERE status_code >= 400) AS errors,
       coalesce(sum(credits_charged), 0) AS credits
FROM ml_service_requests
WHERE created_at >= $1 AND created_at < $2
  AND ($3::text IS NULL OR organization_id = $3)
  AND ($4::text IS NULL OR api_key_id = $4)
GROUP BY 1, 2, 3, 4
"""


async def usage_rows(pool: asyncpg.Pool, query: UsageQuery) -> list[UsageRow]:
    """The usage for ``query``, one row per (key, organisation, day, category), sorted."""
    start = datetime.combine(query.since, time.min, UTC)
    end = datetime.combine(query.until + timedelta(days=1), time.min, UTC)
    rows = await pool.fetch(
        _SQL, start, end, query.organization_id, query.api_key_id, timeout=QUERY_TIMEOUT_S
    )
    # endpoints -> categories here, by the contract's rule (the gateway never imports the
    # engine, and SQL does not know the route groups)
    folded: dict[tuple[str | None, str | None, str, str], list[int]] = {}
    for row in rows:
        category = group_of_path(row["endpoint"]) or OTHER
        key = (row["api_key_id"], row["organization_id"], row["day"].isoformat(), category)
        totals = folded.setdefault(key, [0, 0, 0])
        totals[0] += row["requests"]
        totals[1] += row["errors"]
        totals[2] += row["credits"]
    return [
        UsageRow(*key, requests=r, errors=e, credits=c)
        for key, (r, e, c) in sorted(folded.items(), key=lambda item: repr(item[0]))
    ]
