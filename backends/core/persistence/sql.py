"""SQL shared by the backends, written with asyncpg's $n placeholders.

`as_pyformat()` converts a statement for DB-API drivers (Django's cursor, psycopg) whose
placeholders are %s; every $n appears once and in order, so the conversion is positional.
"""

from __future__ import annotations

import re
from functools import cache

REQUEST_TABLE = "ml_service_requests"
# The columns of a request row, in the order of records.request_params: INSERT_REQUEST's
# and the COPY the asyncpg writer sends a batch with (one statement for the whole batch).
REQUEST_COLUMNS = (
    "id", "user_id", "organization_id", "service_name", "endpoint", "method", "request_payload",
    "response_payload", "status_code", "error_message", "duration_ms", "credits_charged",
    "ip_address", "user_agent", "request_id", "created_at", "api_key_id", "shadow",
)  # fmt: skip
INSERT_REQUEST = f"""
INSERT INTO {REQUEST_TABLE} ({", ".join(REQUEST_COLUMNS)})
VALUES ({", ".join(f"${n}" for n in range(1, len(REQUEST_COLUMNS) + 1))})
"""

UPSERT_USAGE = """
INSERT INTO ml_service_usage AS u (
    user_id, organization_id, date, service_name, endpoint_category, total_requests,
    total_credits, total_duration_ms, avg_duration_ms, success_count, error_count, updated_at
) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now())
ON CONFLICT (user_id, organization_id, date, service_name, endpoint_category) DO UPDATE SET
    total_requests = u.total_requests + EXCLUDED.total_requests,
    -- saturates instead of failing: an overflow would refuse every later row of the user
    total_credits = LEAST(u.total_credits::numeric + EXCLUDED.total_credits,
        9223372036854775807)::bigint,
    total_duration_ms = u.total_duration_ms + EXCLUDED.total_duration_ms,
    avg_duration_ms = (u.total_duration_ms + EXCLUDED.total_duration_ms)
        / GREATEST(u.total_requests + EXCLUDED.total_requests, 1),
    success_count = u.success_count + EXCLUDED.success_count,
    error_count = u.error_count + EXCLUDED.error_count,
    updated_at = now()
"""

# A cache record read on a Redis miss must not wait on a database that hangs: the answer
# is only a miss, and computing it (sentiment ~1 ms) beats waiting for asyncpg's 30 s
# command timeout or a frozen server. Local reads take ~0.3 ms.
CACHE_READ_TIMEOUT_S = 0.5
SELECT_CACHE = """
UPDATE ml_service_cache SET hit_count = hit_count + 1, last_hit_at = now()
WHERE cache_key = $1 AND expires_at > now()
RETURNING response_data
"""

# The same read for several keys in one round trip, both backends: the keys of the
# requests that missed while the previous read ran, each with how many requests asked for
# it (its hits). Django's reader sends a lone read as SELECT_CACHE, which costs Postgres
# less (~10 us against ~50 us; ~5 us per key at 8 keys); FastAPI sends every read as this.
SELECT_CACHE_MANY = """
UPDATE ml_service_cache AS c SET hit_count = c.hit_count + w.hits, last_hit_at = now()
FROM unnest($1::text[], $2::int[]) AS w(cache_key, hits)
WHERE c.cache_key = w.cache_key AND c.expires_at > now()
RETURNING c.cache_key, c.response_data
"""

# response_data arrives as the JSON text served (records.cache_params), parsed here once.
UPSERT_CACHE = """
INSERT INTO ml_service_cache (
    cache_key, request_hash, endpoint, service_name, response_data, expires_at, hit_count,
    size_bytes, created_at
) VALUES ($1, $2, $3, $4, $5::text::jsonb, now() + make_interval(secs => $6), 0, $7, now())
ON CONFLICT (cache_key) DO UPDATE SET
    response_data = EXCLUDED.response_data,
    expires_at = EXCLUDED.expires_at,
    size_bytes = EXCLUDED.size_bytes
"""

APPLIED_MIGRATIONS = "SELECT name FROM django_migrations WHERE app = $1"

INSERT_COMPLEXITY_SAMPLE = """
INSERT INTO ml_complexity_samples (task_type, pre_score, actual_score, service_name, created_at)
VALUES ($1, $2, $3, $4, now())
"""

SELECT_COMPLEXITY_SAMPLES = """
SELECT task_type, pre_score, actual_score FROM ml_complexity_samples
ORDER BY created_at DESC LIMIT $1
"""

_PLACEHOLDER = re.compile(r"\$\d+")


@cache  # its arguments are this module's statements: a few, each converted once
def as_pyformat(statement: str) -> str:
    """`$1, $2` -> `%s, %s` for DB-API drivers (each placeholder used once, in order)."""
    numbers = [int(m.group()[1:]) for m in _PLACEHOLDER.finditer(statement)]
    if numbers != list(range(1, len(numbers) + 1)):
        raise ValueError("statement reuses or reorders placeholders; cannot convert positionally")
    return _PLACEHOLDER.sub("%s", statement.replace("%", "%%"))


INCREMENT_CACHE_HITS = """
UPDATE ml_service_cache SET hit_count = hit_count + $1, last_hit_at = now() WHERE cache_key = $2
"""
