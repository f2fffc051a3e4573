"""Postgres away for a few seconds under traffic: every acknowledged request is logged.

The backend reaches the session database through a relay the test switches off (open
connections reset, new ones refused, as when Postgres stops), for longer than the old
writers' three failed flushes; sentiment needs no database, so it keeps answering.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from devinfra.processes import running_service
from e2e.conftest import BACKEND_MODULES, backend_env
from tests.persistence.tcp_proxy import TcpProxy, relay_to

OUTAGE_S = 3.0  # > 3 failed flushes of the old writers at a 0.2 s interval


@pytest.fixture
def proxy(migrated_pg_url: str) -> Iterator[TcpProxy]:
    with relay_to(migrated_pg_url) as relay:
        yield relay


def _stored(pg_url: str, request_ids: list[str], timeout_s: float = 30) -> set[str]:
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(pg_url, autocommit=True) as pg:
        while True:
            rows = pg.execute(
                "SELECT request_id FROM ml_service_requests WHERE request_id = ANY(%s)",
                (request_ids,),
            ).fetchall()
            if len(rows) == len(request_ids) or time.monotonic() > deadline:
                return {row[0] for row in rows}
            time.sleep(0.2)


@pytest.mark.parametrize("backend", BACKEND_MODULES)
def test_no_acknowledged_request_is_lost_in_an_outage(
    backend: str, migrated_pg_url: str, redis_url: str, proxy: TcpProxy, tmp_path: Path
) -> None:
    through = proxy.dsn_through(migrated_pg_url)
    env = backend_env(through, redis_url)
    acknowledged: list[str] = []
    statuses: list[int] = []
    with (
        running_service(BACKEND_MODULES[backend], env, tmp_path) as service,
        httpx.Client(base_url=service.base_url, timeout=30) as client,
    ):

        def send(phase: str, count: int) -> None:
            for _ in range(count):
                request_id = f"outage-{backend}-{phase}-{uuid.uuid4()}"
                response = client.post(
                    "/api/v1/analysis/sentiment",
                    json={"text": "the database is away"},
                    headers={"X-Request-ID": request_id},
                )
                statuses.append(response.status_code)
                if response.status_code == 200:
                    acknowledged.append(request_id)

        send("before", 5)
        proxy.down()
        ends = time.monotonic() + OUTAGE_S
        while time.monotonic() < ends:
            send("during", 1)
            time.sleep(0.05)
        proxy.up()
        send("after", 5)
        stored = _stored(migrated_pg_url, acknowledged)
    assert set(statuses) == {200}, statuses
    assert any("-during-" in request_id for request_id in acknowledged)
    assert sorted(set(acknowledged) - stored) == []


def _worker_pids(master: int) -> set[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return {int(pid) for pid in children}


def test_a_django_worker_that_boots_in_an_outage_serves(
    migrated_pg_url: str, redis_url: str, proxy: TcpProxy, tmp_path: Path
) -> None:
    """Both gunicorn workers killed while Postgres is away: their replacements boot during
    the outage and answer what needs no database (a worker failing to boot halts the whole
    gunicorn server), and the vector store connects once Postgres is back."""
    env = {**backend_env(proxy.dsn_through(migrated_pg_url), redis_url), "DJANGO_WORKERS": "2"}
    with (
        running_service(BACKEND_MODULES["django"], env, tmp_path) as service,
        httpx.Client(base_url=service.base_url, timeout=30) as client,
    ):
        master = service.process.pid
        deadline = time.monotonic() + 60
        while len(old := _worker_pids(master)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        proxy.down()
        for pid in old:
            os.kill(pid, signal.SIGKILL)
        statuses: list[int] = []
        while time.monotonic() < deadline and service.process.poll() is None:
            with contextlib.suppress(httpx.TransportError):
                response = client.post(
                    "/api/v1/analysis/sentiment", json={"text": "booted in an outage"}
                )
                statuses.append(response.status_code)
                if response.status_code == 200 and not _worker_pids(master) & old:
                    break
            time.sleep(0.2)
        assert service.process.poll() is None, service.log()[-3000:]
        assert statuses and statuses[-1] == 200, statuses
        # a store request during the outage is a prompt 503, not a hang
        away = client.get("/api/v1/rag/collections")
        assert away.status_code == 503, away.text
        proxy.up()
        while time.monotonic() < deadline:
            if client.get("/api/v1/rag/collections").status_code == 200:
                break
            time.sleep(0.3)
        assert client.get("/api/v1/rag/collections").status_code == 200
