"""The embedded infrastructure is real: SQL, pgvector and Redis commands really run."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from devinfra.postgres import LocalPostgres


def test_postgres_is_real_and_has_pgvector(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        version = conn.execute("SELECT version()").fetchone()
        assert version is not None and version[0].startswith("PostgreSQL 18")
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        distance = conn.execute("SELECT '[1,0]'::vector <=> '[0,1]'::vector").fetchone()
        assert distance is not None and abs(distance[0] - 1.0) < 1e-9


def test_redis_is_real(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    key = "tests:infra:counter"
    client.delete(key)
    assert client.incr(key) == 1
    assert client.incr(key) == 2
    script = client.register_script("return redis.call('INCRBY', KEYS[1], 5)")
    assert script(keys=[key]) == 7


@pytest.fixture
def pg_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="mlapi-pgtest-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_restart_after_crash_reuses_data_dir(pg_dir: Path) -> None:
    first = LocalPostgres(pg_dir / "pg")
    with psycopg.connect(first.start(), autocommit=True) as conn:
        conn.execute("CREATE TABLE survivor (v int)")
        conn.execute("INSERT INTO survivor VALUES (42)")
    first.kill()  # SIGKILL: stale postmaster.pid left behind, WAL not checkpointed

    second = LocalPostgres(pg_dir / "pg")
    try:
        with psycopg.connect(second.start()) as conn:
            row = conn.execute("SELECT v FROM survivor").fetchone()
            assert row == (42,)
    finally:
        second.stop()


def test_second_start_while_running_reuses_the_live_server(pg_dir: Path) -> None:
    owner = LocalPostgres(pg_dir / "pg")
    url = owner.start()
    try:
        # e.g. `make run` killed -9 while its postgres survived: the next run adopts it
        adopter = LocalPostgres(pg_dir / "pg")
        assert adopter.start() == url
        adopter.stop()  # not started by the adopter: must not stop the owner's server
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        owner.stop()
