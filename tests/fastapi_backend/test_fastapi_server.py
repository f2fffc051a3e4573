"""The FastAPI backend as a real server process on real Postgres and Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from backends.core.persistence.cache_keys import request_hash
from devinfra.processes import RunningService, running_service
from shared_schemas.analysis import SentimentRequest

SECRET = "sk-test-never-store-this-0123456789"
GATEWAY_SECRET = "test-gateway-secret"


def server_env(database_url: str, redis_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "OPENAI_API_KEY": SECRET,  # configured but unused: providers stay local
        "EMBEDDING_PROVIDER": "local",
        "LLM_PROVIDER": "extractive",
        "VECTOR_STORE": "pgvector",
        "QDRANT_URL": "",
        "QDRANT_PATH": "",
        "FASTAPI_LOG_FLUSH_INTERVAL_S": "0.2",
        "ML_SERVICE_GATEWAY_SECRET": GATEWAY_SECRET,
    }


@pytest.fixture(scope="module")
def server(
    migrated_pg_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    env = server_env(migrated_pg_url, redis_url)
    with running_service("backends.fastapi_service", env, tmp_path_factory.mktemp("logs")) as svc:
        yield svc


def _error(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "request_id"}
    assert set(body["error"]) == {"code", "message", "details"}
    return body


def test_health_live_ready(server: RunningService) -> None:
    health = httpx.get(server.base_url + "/health").json()
    assert health["backend"] == "fastapi"
    assert health["status"] == "ok"
    assert httpx.get(server.base_url + "/live").json()["live"] is True
    ready = httpx.get(server.base_url + "/ready").json()
    assert ready["ready"] is True
    assert ready["checks"]["postgres"]["ok"] is True
    assert ready["checks"]["redis"]["ok"] is True
    assert ready["checks"]["vector_store"]["ok"] is True


def test_validation_error_has_the_error_shape_and_echoes_the_request_id(
    server: RunningService,
) -> None:
    response = httpx.post(
        server.base_url + "/api/v1/embeddings/generate",
        json={"text": "   "},
        headers={"X-Request-ID": "trace-42"},
    )
    assert response.status_code == 422
    body = _error(response)
    assert body["request_id"] == "trace-42"
    assert response.headers["x-request-id"] == "trace-42"
    assert body["error"]["code"] == "validation_error"
    assert body["error"]["details"][0]["loc"] == ["body", "text"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("GET", "/nope", {}, 404, "not_found"),
        ("PUT", "/api/v1/embeddings/generate", {}, 405, "method_not_allowed"),
        ("POST", "/api/v1/embeddings/generate", {"content": b"{not json"}, 400, "bad_request"),
        (
            "POST",
            "/api/v1/embeddings/generate",
            {"content": b"text=hi", "headers": {"content-type": "text/plain"}},
            415,
            "unsupported_media_type",
        ),
        ("DELETE", "/api/v1/rag/collection/never-created", {}, 404, "not_found"),
        ("DELETE", "/api/v1/rag/collection/bad%20name!", {}, 422, "validation_error"),
    ],
)
def test_errors_use_the_one_shape(
    server: RunningService, method: str, path: str, kwargs: dict[str, Any], status: int, code: str
) -> None:
    response = httpx.request(method, server.base_url + path, **kwargs)
    assert response.status_code == status
    assert _error(response)["error"]["code"] == code


def test_repeated_deterministic_request_is_served_from_cache(
    server: RunningService, migrated_pg_url: str
) -> None:
    body = {"text": f"The cache test {time.time_ns()} makes me very happy indeed."}
    # other suites share this database and cache sentiment responses too: find this row
    digest = request_hash(SentimentRequest.model_validate(body))
    url = server.base_url + "/api/v1/analysis/sentiment"
    first = httpx.post(url, json=body)
    second = httpx.post(url, json=body)
    assert first.status_code == second.status_code == 200
    assert first.headers["x-cache"] == "miss"
    assert second.headers["x-cache"] == "hit"
    assert second.json() == first.json()
    deadline = time.monotonic() + 10  # background writers flush every 0.2 s
    with psycopg.connect(migrated_pg_url, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT hit_count FROM ml_service_cache WHERE request_hash = %s", (digest,)
            ).fetchone()
            if (row is not None and row[0] >= 1) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert row is not None
    assert row[0] >= 1


def test_every_request_is_logged_with_usage_and_no_secret(
    server: RunningService, migrated_pg_url: str
) -> None:
    user = f"user-{time.time_ns()}"
    # as the gateway sends it: attribution is recorded only next to the gateway secret
    headers = {
        "X-User-ID": user,
        "X-Gateway-Secret": GATEWAY_SECRET,
        "Authorization": f"Bearer {SECRET}",
    }
    requests: list[tuple[str, str, Any]] = [
        ("POST", "/api/v1/embeddings/generate", {"text": "hello"}),
        ("POST", "/api/v1/analysis/keywords", {"text": "solar panels convert sunlight"}),
        ("POST", "/api/v1/complexity/pre-estimate", {"title": "fix typo in readme"}),
        ("GET", "/api/v1/complexity/scale", None),
        ("POST", "/api/v1/embeddings/generate", {"text": ""}),  # 422
        ("POST", "/api/v1/rag/index", {
            "collection": "logtest",
            "documents": [{"id": "d1", "text": "secret keeper", "metadata": {"api_key": SECRET}}],
        }),
    ]  # fmt: skip
    sent = 0
    errors = 0
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:
        while sent < 200:
            method, path, body = requests[sent % len(requests)]
            response = client.request(method, path, json=body)
            errors += response.status_code >= 400
            sent += 1
    deadline = time.monotonic() + 10
    with psycopg.connect(migrated_pg_url) as conn:
        while time.monotonic() < deadline:
            count = conn.execute(
                "SELECT count(*) FROM ml_service_requests WHERE user_id = %s", (user,)
            ).fetchone()
            if count == (200,):
                break
            time.sleep(0.2)
        assert count == (200,)
        usage = conn.execute(
            "SELECT sum(total_requests), sum(error_count), min(service_name), max(service_name)"
            " FROM ml_service_usage WHERE user_id = %s",
            (user,),
        ).fetchone()
        stored = conn.execute(
            "SELECT count(*) FROM ml_service_requests WHERE request_payload::text LIKE %s"
            " OR response_payload::text LIKE %s OR coalesce(error_message, '') LIKE %s",
            (f"%{SECRET}%",) * 3,
        ).fetchone()
    assert usage == (200, errors, "fastapi", "fastapi")
    assert stored == (0,)


@pytest.mark.parametrize("presented", [None, "", "not-the-gateway-secret"])
def test_attribution_without_the_gateway_secret_is_not_recorded(
    server: RunningService, migrated_pg_url: str, presented: str | None
) -> None:
    run = f"direct-{time.time_ns()}"
    headers = {"X-User-ID": run, "X-Organization-ID": run, "X-Request-ID": run}
    if presented is not None:
        headers["X-Gateway-Secret"] = presented
    response = httpx.get(server.base_url + "/api/v1/complexity/scale", headers=headers)
    assert response.status_code == 200
    deadline = time.monotonic() + 10
    with psycopg.connect(migrated_pg_url) as conn:
        while True:
            row = conn.execute(
                "SELECT user_id, organization_id FROM ml_service_requests WHERE request_id = %s",
                (run,),
            ).fetchone()
            if row is not None or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert row == (None, None)


def test_refuses_to_start_while_migrations_are_pending(
    pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS unmigrated")
        conn.execute("CREATE DATABASE unmigrated")
    fresh_url = pg_url.rsplit("/", 1)[0] + "/unmigrated"
    with pytest.raises(RuntimeError, match="exited"):  # noqa: SIM117
        with running_service(
            "backends.fastapi_service", server_env(fresh_url, redis_url), tmp_path
        ) as service:
            pytest.fail(f"started without migrations: {service.base_url}")
    log = next(tmp_path.glob("*.log")).read_text()
    assert "migration(s) pending" in log
    assert "manage migrate" in log


@pytest.mark.parametrize("server_kind", ["granian", "uvicorn"])
def test_a_clean_stop_flushes_every_queued_log_row(
    migrated_pg_url: str, redis_url: str, tmp_path: Path, server_kind: str
) -> None:
    user = f"stop-{server_kind}-{time.time_ns()}"
    env = {
        **server_env(migrated_pg_url, redis_url),
        "FASTAPI_SERVER": server_kind,
        "FASTAPI_LOG_FLUSH_INTERVAL_S": "600",  # nothing is written until the stop
    }
    with running_service("backends.fastapi_service", env, tmp_path) as service:
        for _ in range(25):
            httpx.get(
                service.base_url + "/api/v1/complexity/scale",
                headers={"X-User-ID": user, "X-Gateway-Secret": GATEWAY_SECRET},
            )
        with psycopg.connect(migrated_pg_url) as conn:
            before = conn.execute(
                "SELECT count(*) FROM ml_service_requests WHERE user_id = %s", (user,)
            ).fetchone()
    # running_service sent SIGTERM and waited for the process to exit
    assert service.process.returncode is not None
    with psycopg.connect(migrated_pg_url) as conn:
        after = conn.execute(
            "SELECT count(*) FROM ml_service_requests WHERE user_id = %s", (user,)
        ).fetchone()
    assert before == (0,)
    assert after == (25,)
