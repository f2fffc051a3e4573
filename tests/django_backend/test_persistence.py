"""The shared tables and the shared cache, written by the Django backend."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

import httpx
import psycopg
import redis

from backends.core.persistence.cache_keys import cache_key
from devinfra.processes import RunningService
from shared_schemas.embeddings import EmbeddingRequest
from tests.django_backend.helpers import eventually

GENERATE = "/api/v1/embeddings/generate"
LOCAL_IDENTITY = "local/all-MiniLM-L6-v2"


def _post(server: RunningService, path: str, body: Any, request_id: str) -> httpx.Response:
    return httpx.post(
        server.base_url + path, json=body, headers={"X-Request-ID": request_id}, timeout=60
    )


def _request_row(pg: psycopg.Connection[Any], request_id: str) -> tuple[Any, ...] | None:
    return pg.execute(
        "SELECT service_name, endpoint, method, status_code, request_payload,"
        " response_payload, error_message FROM ml_service_requests WHERE request_id = %s",
        (request_id,),
    ).fetchone()


def _hit_count(pg: psycopg.Connection[Any], key: str) -> int | None:
    row = pg.execute("SELECT hit_count FROM ml_service_cache WHERE cache_key = %s", (key,))
    found = row.fetchone()
    return None if found is None else int(found[0])


def test_repeated_request_is_a_cache_hit_counted_in_postgres(
    django_server: RunningService, pg: psycopg.Connection[Any], redis_client: redis.Redis[bytes]
) -> None:
    body = {"text": f"cache me {uuid.uuid4()}"}
    # the key every backend computes: endpoint + the validated body + the answering model
    key = cache_key(GENERATE, EmbeddingRequest.model_validate(body), LOCAL_IDENTITY)
    first = _post(django_server, GENERATE, body, str(uuid.uuid4()))
    second = _post(django_server, GENERATE, body, str(uuid.uuid4()))
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert first.content == second.content == redis_client.get(key)
    assert eventually(lambda: _hit_count(pg, key) == 1)
    # Redis lost the entry: the Postgres record answers (and counts) and refills Redis
    redis_client.delete(key)
    third = _post(django_server, GENERATE, body, str(uuid.uuid4()))
    assert third.headers["x-cache"] == "hit"
    assert json.loads(third.content) == json.loads(first.content)
    assert eventually(lambda: _hit_count(pg, key) == 2)
    assert redis_client.get(key) is not None


def test_a_response_cached_by_another_backend_is_served(
    django_server: RunningService, redis_client: redis.Redis[bytes]
) -> None:
    body = {"text": f"cached elsewhere {uuid.uuid4()}"}
    key = cache_key(GENERATE, EmbeddingRequest.model_validate(body), LOCAL_IDENTITY)
    planted = b'{"embedding":[1.0],"dimensions":1,"model":"all-MiniLM-L6-v2","provider":"local"}'
    redis_client.set(key, planted, ex=60)
    response = _post(django_server, GENERATE, body, str(uuid.uuid4()))
    assert response.headers["x-cache"] == "hit"
    assert response.content == planted


def test_requests_are_logged_with_secrets_redacted(
    django_server: RunningService, pg: psycopg.Connection[Any]
) -> None:
    ok_id, invalid_id = f"ok-{uuid.uuid4()}", f"invalid-{uuid.uuid4()}"
    assert _post(django_server, "/api/v1/analysis/sentiment", {"text": "great"}, ok_id).is_success
    secret = "sk-test-do-not-store-" + uuid.uuid4().hex
    invalid = _post(
        django_server, "/api/v1/analysis/sentiment", {"text": "hi", "api_key": secret}, invalid_id
    )
    assert invalid.status_code == 422

    ok_row = eventually(lambda: _request_row(pg, ok_id))
    service, endpoint, method, status, request_payload, response_payload, error = ok_row
    assert (service, endpoint, method, status) == ("django", "/api/v1/analysis/sentiment",
                                                   "POST", 200)  # fmt: skip
    assert request_payload["text"] == "great"
    assert response_payload["sentiment"] == "positive"
    assert error is None

    bad_row = eventually(lambda: _request_row(pg, invalid_id))
    assert bad_row[3] == 422
    assert bad_row[4] == {"text": "hi", "api_key": "[redacted]"}  # what the caller sent
    assert bad_row[6] == "Request validation failed"
    assert secret not in json.dumps(bad_row, default=str)


def test_unknown_routes_are_logged_and_usage_is_aggregated(
    django_server: RunningService, pg: psycopg.Connection[Any]
) -> None:
    request_id = f"missing-{uuid.uuid4()}"
    response = httpx.get(django_server.base_url + "/nope", headers={"X-Request-ID": request_id})
    assert response.status_code == 404
    row = eventually(lambda: _request_row(pg, request_id))
    assert row[1:4] == ("/nope", "GET", 404)
    usage = pg.execute(
        "SELECT total_requests, error_count FROM ml_service_usage"
        " WHERE service_name = 'django' AND endpoint_category = 'other' AND date = current_date"
    ).fetchone()
    assert usage is not None and usage[0] >= 1 and usage[1] >= 1


def test_queued_logs_are_flushed_when_the_server_stops(
    start_django_server: Any, pg: psycopg.Connection[Any]
) -> None:
    request_id = f"flush-on-exit-{uuid.uuid4()}"
    # a flush interval far longer than the test: only the shutdown flush can write the row
    with start_django_server(DJANGO_LOG_FLUSH_INTERVAL_S="600", DJANGO_WORKERS="1") as server:
        response = _post(server, "/api/v1/complexity/pre-estimate", {"title": "x"}, request_id)
        assert response.status_code == 200
        assert _request_row(pg, request_id) is None
    row = _request_row(pg, request_id)
    assert row is not None and row[3] == 200


def test_models_match_the_migrations(migrated_pg_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "backends.django_service.manage", "makemigrations", "--check",
         "--dry-run"],
        env={"DATABASE_URL": migrated_pg_url, "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
