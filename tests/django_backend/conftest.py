"""A real Django backend: gunicorn sync workers via `python -m backends.django_service`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from devinfra.processes import RunningService, running_service

MODULE = "backends.django_service"


def _server_env(pg_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": pg_url,
        "REDIS_URL": redis_url,
        "DJANGO_LOG_FLUSH_INTERVAL_S": "0.2",
        # these suites check the Redis and Postgres layers of the shared cache (one test
        # deletes a Redis key); the per-process layer is covered by
        # tests/persistence/test_memory_cache.py and the FastAPI server's cache test
        "DJANGO_CACHE_MEMORY_BYTES": "0",
        **extra,
    }


@pytest.fixture(scope="session")
def _no_qdrant() -> Iterator[None]:
    """The server must use pgvector in the session database, whatever the shell exports."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("QDRANT_")]:
            patch.delenv(name)
        yield


@pytest.fixture(scope="session")
def django_server(
    migrated_pg_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    _no_qdrant: None,
) -> Iterator[RunningService]:
    log_dir: Path = tmp_path_factory.mktemp("django-server")
    with running_service(MODULE, _server_env(migrated_pg_url, redis_url), log_dir) as service:
        yield service


@pytest.fixture(scope="session")
def start_django_server(
    migrated_pg_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    _no_qdrant: None,
):  # type: ignore[no-untyped-def]
    """Context-manager factory for a short-lived extra server (shutdown behaviour)."""
    log_dir: Path = tmp_path_factory.mktemp("django-extra")

    def start(**extra: str):  # type: ignore[no-untyped-def]
        return running_service(MODULE, _server_env(migrated_pg_url, redis_url, **extra), log_dir)

    return start


@pytest.fixture(scope="session")
def pg(migrated_pg_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(migrated_pg_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def redis_client(redis_url: str) -> Iterator[redis.Redis[bytes]]:
    client: redis.Redis[bytes] = redis.Redis.from_url(redis_url)
    yield client
    client.close()
