"""A backend killed mid-traffic: fast 502s in the error shape, then recovery."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx

from devinfra.ports import free_port
from devinfra.processes import kill_group, running_service, stop_process
from e2e.conftest import Backends

PATH = "/api/v1/complexity/scale"


def test_killed_backend_gives_fast_502s_and_recovers(backends: Backends, tmp_path: Path) -> None:
    port = free_port()
    outcomes: list[tuple[float, int, dict[str, Any] | None]] = []
    stop = threading.Event()

    def traffic(base_url: str) -> None:
        with httpx.Client(base_url=base_url, timeout=10) as client:
            while not stop.is_set():
                started = time.monotonic()
                response = client.get(PATH)
                body = response.json() if response.status_code >= 400 else None
                outcomes.append((time.monotonic() - started, response.status_code, body))
                time.sleep(0.02)

    victim = running_service("backends.fastapi_service", backends.env, tmp_path, port=port)
    backend = victim.__enter__()
    gateway_env = {
        **backends.env,
        "ML_SERVICE_BACKEND": "victim",
        "ML_BACKEND_VICTIM_URL": backend.base_url,
    }
    with running_service("gateway", gateway_env, tmp_path) as gateway:
        sender = threading.Thread(target=traffic, args=(gateway.base_url,), daemon=True)
        sender.start()
        time.sleep(1.0)
        kill_group(backend.process)  # no graceful shutdown: connections just vanish
        backend.process.wait(timeout=10)
        time.sleep(2.0)
        with running_service("backends.fastapi_service", backends.env, tmp_path, port=port):
            time.sleep(1.5)
            stop.set()
            sender.join(timeout=15)
    stop_process(backend.process)

    statuses = [status for _, status, _ in outcomes]
    assert set(statuses) <= {200, 502}, statuses
    failures = [(elapsed, body) for elapsed, status, body in outcomes if status == 502]
    assert failures, "no request hit the dead backend"
    assert max(elapsed for elapsed, _ in failures) < 1.0
    assert all(body is not None and body["error"]["code"] == "bad_gateway" for _, body in failures)
    assert statuses[-1] == 200, "the gateway did not recover when the backend came back"
