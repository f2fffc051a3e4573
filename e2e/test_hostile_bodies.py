"""Bodies Python's json accepts but JSON (and jsonb) does not, and bodies nested too deep.

Each is a 4xx in the error shape on both backends, and logged: its row and the row of a
well-formed request sent right after it (the same log batch) both reach Postgres.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import psycopg
import pytest

from e2e.conftest import BACKEND_MODULES, Backends

HOSTILE = {
    "infinity": b'{"query": "x", "top_k": Infinity}',
    "nan": b'{"query": "x", "top_k": NaN}',
    "overflowing_float": b'{"query": "x", "top_k": 1e999}',
    "nested_10000_deep": b'{"query": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
}


def _logged(pg_url: str, request_ids: list[str], timeout_s: float = 10) -> dict[str, int]:
    """request_id -> status_code of the rows stored so far, polled until all arrive."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(pg_url, autocommit=True) as pg:
        while True:
            rows = pg.execute(
                "SELECT request_id, status_code FROM ml_service_requests"
                " WHERE request_id = ANY(%s)",
                (request_ids,),
            ).fetchall()
            if len(rows) == len(request_ids) or time.monotonic() > deadline:
                return {row[0]: row[1] for row in rows}
            time.sleep(0.1)


@pytest.mark.parametrize("backend", BACKEND_MODULES)
@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_body_is_a_4xx_and_logged_with_its_neighbour(
    backend: str, body: bytes, backends: Backends, migrated_pg_url: str
) -> None:
    base_url = backends.services[backend].base_url
    hostile_id, good_id = f"hostile-{uuid.uuid4()}", f"after-{uuid.uuid4()}"
    with httpx.Client(base_url=base_url, timeout=30) as client:
        response = client.post(
            "/api/v1/rag/search",
            content=body,
            headers={"Content-Type": "application/json", "X-Request-ID": hostile_id},
        )
        good = client.post(
            "/api/v1/analysis/sentiment", json={"text": "fine"}, headers={"X-Request-ID": good_id}
        )
    assert 400 <= response.status_code < 500, response.text
    error: dict[str, Any] = response.json()
    assert set(error) == {"error", "request_id"} and error["request_id"] == hostile_id
    assert good.status_code == 200
    assert _logged(migrated_pg_url, [hostile_id, good_id]) == {
        hostile_id: response.status_code,
        good_id: 200,
    }
