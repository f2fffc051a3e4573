"""The shared schema (Django migrations) and the SQL both backends write with."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import asyncpg
import psycopg

from backends.core.persistence import sql
from backends.core.persistence.records import (
    RequestRecord,
    aggregate_usage,
    request_params,
    usage_params,
)


def test_no_model_change_without_a_migration() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "backends.django_service.manage", "makemigrations", "--check",
         "--dry-run"],
        env={**os.environ, "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def _records(n: int) -> list[RequestRecord]:
    return [
        RequestRecord.build(
            service_name="fastapi",
            endpoint="/api/v1/embeddings/generate" if i % 2 else "/api/v1/rag/search",
            method="POST",
            status_code=200 if i % 3 else 422,
            duration_ms=10.0 + i,
            request_id=f"req-{i}",
            request_payload={"text": "hi\x00there", "api_key": "sk-live-123"},
            user_id="user-7",
        )
        for i in range(n)
    ]


async def test_asyncpg_writes_requests_and_usage(migrated_pg_url: str) -> None:
    records = _records(12)
    conn = await asyncpg.connect(migrated_pg_url)
    try:
        await conn.set_type_codec(
            "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )
        await conn.execute("DELETE FROM ml_service_usage WHERE user_id = 'user-7'")
        await conn.executemany(sql.INSERT_REQUEST, [request_params(r) for r in records])
        for _ in range(2):  # applied twice: totals must add up, not overwrite
            for key, delta in aggregate_usage(records).items():
                await conn.execute(sql.UPSERT_USAGE, *usage_params(key, delta))
        stored = await conn.fetchval(
            "SELECT request_payload FROM ml_service_requests WHERE request_id = 'req-1'"
        )
        rows = await conn.fetch(
            "SELECT endpoint_category, total_requests, success_count, error_count, avg_duration_ms"
            " FROM ml_service_usage WHERE user_id = 'user-7' ORDER BY endpoint_category"
        )
    finally:
        await conn.close()
    assert stored == {"text": "hithere", "api_key": "[redacted]"}
    by_category = {row["endpoint_category"]: row for row in rows}
    assert set(by_category) == {"embeddings", "rag"}
    assert sum(row["total_requests"] for row in rows) == 24
    assert sum(row["error_count"] for row in rows) == 8
    assert by_category["embeddings"]["avg_duration_ms"] > 10


def test_pyformat_sql_works_with_a_dbapi_driver(migrated_pg_url: str) -> None:
    record = _records(1)[0]
    key, delta = next(iter(aggregate_usage([record]).items()))
    with psycopg.connect(migrated_pg_url) as conn:
        conn.execute(
            sql.as_pyformat(sql.UPSERT_USAGE),
            (None, "org-x", datetime.now(UTC).date(), "django", "rag", 1, 0, 5.0, 5.0, 1, 0),
        )
        conn.execute(sql.as_pyformat(sql.UPSERT_USAGE), usage_params(key, delta))
        count = conn.execute(
            "SELECT total_requests FROM ml_service_usage WHERE organization_id = 'org-x'"
        ).fetchone()
    assert count == (1,)


async def test_a_cached_answer_is_stored_uncompressed(migrated_pg_url: str) -> None:
    """An embeddings answer (~8 KB of JSON) goes out of line without pglz: compressing
    it cost Postgres about as much CPU as the rest of its upsert (migration 0006)."""
    answer = json.dumps({"embedding": [0.123456789 * i for i in range(384)], "model": "m"})
    key = "mlcache:uncompressed"
    conn = await asyncpg.connect(migrated_pg_url)
    try:
        await conn.execute(sql.UPSERT_CACHE, key, "h", "/api/v1/embeddings/generate",
                           "test", answer, 60, len(answer))  # fmt: skip
        row = await conn.fetchrow(
            "SELECT response_data::text, pg_column_compression(response_data)"
            " FROM ml_service_cache WHERE cache_key = $1",
            key,
        )
        assert row is not None
        stored, compression = row
        assert json.loads(stored) == json.loads(answer)
        assert compression is None, f"stored with {compression} compression"
    finally:
        await conn.execute("DELETE FROM ml_service_cache WHERE cache_key = $1", key)
        await conn.close()
