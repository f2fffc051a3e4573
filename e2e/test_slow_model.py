"""A slow model: an OpenAI-compatible LLM provider that answers after the backend gave up.

The provider is a real HTTP server in the test (any OpenAI-compatible server, as with
OPENAI_BASE_URL=http://localhost:8000/v1 for vLLM or llama.cpp's server) that waits
SLOW_S before each chat completion, longer than OPENAI_TIMEOUT_S. The client sees a 504
in the error shape once the timeout has passed, never the late answer; /health and an
operation that needs no model answer meanwhile; the request's row is stored with its 504.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psycopg
import pytest

from devinfra.processes import RunningService, running_service
from e2e.conftest import BACKEND_MODULES, backend_env
from e2e.test_database_outage import _stored

PROVIDER_TIMEOUT_S = 1.0
SLOW_S = 4.0  # the provider's answer comes this late: after the timeout
CLIENT_TIMEOUT_S = 3.5  # bounds the wait: the backend must have given up before it


class _SlowProvider(BaseHTTPRequestHandler):
    """``POST /v1/chat/completions``: a valid completion, SLOW_S seconds late."""

    received = threading.Event()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        type(self).received.set()
        time.sleep(SLOW_S)
        body = json.dumps(
            {
                "id": "chatcmpl-slow",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": "slow-model",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "too late"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
            }
        ).encode()
        try:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the backend hung up when it timed out

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Stack:
    service: RunningService
    provider: type[_SlowProvider]


@pytest.fixture(scope="module", params=list(BACKEND_MODULES))
def stack(
    request: pytest.FixtureRequest,
    migrated_pg_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    provider = type("Provider", (_SlowProvider,), {"received": threading.Event()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), provider)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        **backend_env(migrated_pg_url, redis_url),
        "LLM_PROVIDER": "openai",
        "OPENAI_API_KEY": "sk-test-slow-provider",
        "OPENAI_BASE_URL": f"http://127.0.0.1:{server.server_address[1]}/v1",
        "OPENAI_TIMEOUT_S": str(PROVIDER_TIMEOUT_S),
        "OPENAI_MAX_RETRIES": "0",
    }
    logs: Path = tmp_path_factory.mktemp("slow-model")
    try:
        with running_service(BACKEND_MODULES[request.param], env, logs) as service:
            yield Stack(service, provider)
    finally:
        server.shutdown()
        server.server_close()


def _row_status(pg_url: str, request_id: str) -> int | None:
    with psycopg.connect(pg_url, autocommit=True) as pg:
        row = pg.execute(
            "SELECT status_code FROM ml_service_requests WHERE request_id = %s", (request_id,)
        ).fetchone()
    return None if row is None else int(row[0])


def test_a_slow_model_is_a_504_and_nothing_else_waits(stack: Stack, migrated_pg_url: str) -> None:
    request_id = f"slow-model-{uuid.uuid4()}"
    outcome: dict[str, object] = {}

    def generate() -> None:
        started = time.monotonic()
        with httpx.Client(base_url=stack.service.base_url, timeout=CLIENT_TIMEOUT_S) as client:
            try:
                outcome["response"] = client.post(
                    "/api/v1/analysis/generate",
                    json={"prompt": "Say something slowly."},
                    headers={"X-Request-ID": request_id},
                )
            except httpx.TimeoutException as exc:  # the backend waited for the late answer
                outcome["response"] = exc
        outcome["seconds"] = time.monotonic() - started

    waiting = threading.Thread(target=generate)
    waiting.start()
    assert stack.provider.received.wait(10), "the provider was never called"
    # while the generation waits for the model, what needs no model still answers
    with httpx.Client(base_url=stack.service.base_url, timeout=CLIENT_TIMEOUT_S) as client:
        health = client.get("/health")
        sentiment = client.post("/api/v1/analysis/sentiment", json={"text": "still here"})
    waiting.join(CLIENT_TIMEOUT_S + 5)

    response = outcome["response"]
    assert isinstance(response, httpx.Response), f"no answer within {CLIENT_TIMEOUT_S} s"
    print(f"generate {response.status_code} in {outcome['seconds']:.2f} s: {response.text}")
    assert (health.status_code, sentiment.status_code) == (200, 200)
    assert response.status_code == 504, response.text
    body = response.json()
    assert set(body) == {"error", "request_id"}
    assert body["error"]["code"] == "gateway_timeout"
    assert body["request_id"] == request_id
    assert "sk-test" not in response.text
    assert _stored(migrated_pg_url, [request_id]) == {request_id}
    assert _row_status(migrated_pg_url, request_id) == 504
