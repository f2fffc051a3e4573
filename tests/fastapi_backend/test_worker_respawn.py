"""A granian worker that dies is started again; the server process stays up."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import httpx
import psutil

from devinfra.processes import running_service
from tests.fastapi_backend.test_fastapi_server import server_env


def _workers(pid: int) -> list[int]:
    return [child.pid for child in psutil.Process(pid).children(recursive=True)]


def _serving_again(base_url: str, server_pid: int, timeout_s: float = 120) -> bool:
    """Polls /health until it answers 200, or the server process died (no respawn)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and psutil.pid_exists(server_pid):
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(base_url + "/health", timeout=2).status_code == 200:
                return True
        time.sleep(0.2)
    return False


def test_a_killed_worker_is_respawned(migrated_pg_url: str, redis_url: str, tmp_path: Path) -> None:
    env = {**server_env(migrated_pg_url, redis_url), "FASTAPI_SERVER": "granian"}
    with running_service("backends.fastapi_service", env, tmp_path) as service:
        (worker,) = _workers(service.process.pid)
        os.kill(worker, signal.SIGKILL)
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(worker).wait(timeout=10)
        assert _serving_again(service.base_url, service.process.pid), service.log()[-2000:]
        assert service.process.poll() is None
        assert _workers(service.process.pid) != [worker]
