"""The Lambda entry point answers synthetic API Gateway events (run as its own process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.deploy.lambda_events import Event, http_api_event, rest_api_event
from tests.deploy.manifests import REPO

EMBED = "/api/v1/embeddings/generate"
TEXT = b'{"text": "Vector databases index embeddings for fast search."}'
JSON = {"content-type": "application/json"}


def run_handler(events: list[Event], workdir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """One fresh process (one cold start) handling the events in order."""
    environment = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "HF_HUB_OFFLINE": "1",
        "DATABASE_URL": "",
        "REDIS_URL": "",
        "MODEL_CACHE_DIR": str(workdir / "models"),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "tests.deploy.lambda_events"],
        input=json.dumps(events),
        capture_output=True,
        text=True,
        cwd=workdir,  # no .env of the checkout is read: only the settings given here
        env=environment,
        timeout=180,
        check=False,
    )


def invoke(events: list[Event], workdir: Path, **env: str) -> list[dict[str, Any]]:
    """The handler's responses to the events, from one fresh process."""
    done = run_handler(events, workdir, **env)
    assert done.returncode == 0, done.stderr
    responses: list[dict[str, Any]] = json.loads(done.stdout)
    return responses


def _json(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


@pytest.fixture(scope="module")
def without_database(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("lambda")
    events = [
        http_api_event("GET", "/health"),
        rest_api_event("POST", EMBED, TEXT, **JSON),
        http_api_event("POST", EMBED, b'{"text": ', **JSON),
        rest_api_event("POST", EMBED, b'{"text": ""}', **JSON),
        http_api_event("GET", "/api/v1/nope"),
    ]
    # No Postgres, no Redis: the vector store is Qdrant's local mode in the workdir.
    return invoke(events, workdir, QDRANT_PATH=str(workdir / "qdrant"))


def test_health_answers_on_an_http_api_event(without_database: list[dict[str, Any]]) -> None:
    health = without_database[0]
    assert health["statusCode"] == 200
    assert _json(health)["status"] == "ok"
    assert _json(health)["backend"] == "fastapi"
    assert health["headers"]["content-type"] == "application/json"


def test_a_json_operation_through_a_rest_api_event(without_database: list[dict[str, Any]]) -> None:
    embedded = without_database[1]
    assert embedded["statusCode"] == 200, embedded["body"]
    body = _json(embedded)
    assert body["dimensions"] == len(body["embedding"]) == 384
    assert body["model"] == "all-MiniLM-L6-v2"
    assert embedded["headers"]["x-cache"] == "miss"  # no cache store: never a hit


@pytest.mark.parametrize(
    ("index", "status", "code"),
    [(2, 400, "bad_request"), (3, 422, "validation_error"), (4, 404, "not_found")],
    ids=["malformed-json", "invalid-field", "unknown-path"],
)
def test_errors_come_back_in_the_error_shape(
    without_database: list[dict[str, Any]], index: int, status: int, code: str
) -> None:
    response = without_database[index]
    assert response["statusCode"] == status, response["body"]
    error = _json(response)
    assert error["error"]["code"] == code
    assert error["request_id"] == response["headers"]["x-request-id"]


def test_with_postgres_and_redis_the_cache_and_request_log_work(
    migrated_pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    marker = "lambda-request-log-check"
    events = [
        rest_api_event("POST", EMBED, TEXT, **JSON, **{"x-request-id": f"{marker}-1"}),
        http_api_event("POST", EMBED, TEXT, **JSON, **{"x-request-id": f"{marker}-2"}),
    ]
    first, second = invoke(events, tmp_path, DATABASE_URL=migrated_pg_url, REDIS_URL=redis_url)

    assert first["statusCode"] == second["statusCode"] == 200
    assert second["headers"]["x-cache"] == "hit"
    assert _json(second)["embedding"] == _json(first)["embedding"]
    # The process exited without a shutdown: the rows are there because each invocation
    # flushed the request log before returning.
    with psycopg.connect(migrated_pg_url) as conn:
        rows = conn.execute(
            "SELECT request_id FROM ml_service_requests WHERE request_id LIKE %s ORDER BY 1",
            (f"{marker}-%",),
        ).fetchall()
    assert [row[0] for row in rows] == [f"{marker}-1", f"{marker}-2"]


def test_without_a_database_or_qdrant_the_cold_start_says_what_is_missing(tmp_path: Path) -> None:
    done = run_handler([http_api_event("GET", "/health")], tmp_path)
    assert done.returncode != 0
    assert "the pgvector vector store needs DATABASE_URL" in done.stderr
    assert "QDRANT_URL" in done.stderr
