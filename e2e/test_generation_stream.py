"""Token streaming of /analysis/generate (``stream: true``) on each backend, direct and
through the gateway, with the packaged local LLM (temperature 0: greedy and repeatable)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from contract.promise_tally import PromiseTally
from contract.scenarios import SCENARIOS, Session
from contract.spec import DEFAULT_SPEC
from devinfra.processes import RunningService, running_service
from e2e.conftest import BACKEND_MODULES, backend_env
from shared_schemas.generation import GenerateResponse, GenerateToken
from shared_schemas.operations import by_id

GENERATE = by_id()["analysis_generate"].path
PROMPT = {"prompt": "Write one sentence about the sea.", "max_tokens": 24, "temperature": 0}


class Served:
    def __init__(self, name: str, backend: RunningService, gateway: RunningService) -> None:
        self.name, self.backend, self.gateway = name, backend, gateway


@pytest.fixture(scope="module", params=sorted(BACKEND_MODULES))
def served(
    request: pytest.FixtureRequest,
    migrated_pg_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    """One backend with the local LLM and a gateway routed to it."""
    name: str = request.param
    env = {**backend_env(migrated_pg_url, redis_url), "LLM_PROVIDER": "local"}
    log_dir = tmp_path_factory.mktemp(f"stream-{name}")
    with running_service(BACKEND_MODULES[name], env, log_dir) as backend:
        gateway_env = {
            **env,
            "ML_SERVICE_BACKEND": name,
            f"ML_BACKEND_{name.upper()}_URL": backend.base_url,
        }
        with running_service("gateway", gateway_env, log_dir) as gateway:
            yield Served(name, backend, gateway)


def events(lines: Iterator[str]) -> Iterator[tuple[str, Any]]:
    """(event, JSON data) pairs of a server-sent-event stream, as each one completes."""
    name, data = "message", ""
    for line in lines:
        if line.startswith("event:"):
            name = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data = line.removeprefix("data:").strip()
        elif line == "" and data:
            yield name, json.loads(data)
            name, data = "message", ""


def streamed(base_url: str, body: dict[str, Any], request_id: str) -> list[tuple[str, Any]]:
    with httpx.stream(
        "POST",
        base_url + GENERATE,
        json={**body, "stream": True},
        headers={"X-Request-ID": request_id},
        timeout=120,
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-request-id"] == request_id
        return list(events(response.iter_lines()))


def log_row(pg_url: str, request_id: str) -> tuple[Any, ...]:
    """The request's one log row (the writers flush every 0.2 s)."""
    deadline = time.monotonic() + 10
    with psycopg.connect(pg_url) as conn:
        while True:
            rows = conn.execute(
                "SELECT status_code, response_payload, error_message FROM ml_service_requests "
                "WHERE request_id = %s",
                (request_id,),
            ).fetchall()
            if rows or time.monotonic() > deadline:
                assert len(rows) == 1, rows
                return tuple(rows[0])
            time.sleep(0.2)


@pytest.mark.parametrize("via", ["direct", "gateway"])
def test_the_stream_is_tokens_then_the_whole_answer(
    served: Served, via: str, migrated_pg_url: str
) -> None:
    base_url = served.backend.base_url if via == "direct" else served.gateway.base_url
    whole = httpx.post(base_url + GENERATE, json=PROMPT, timeout=120).json()
    request_id = f"stream-{served.name}-{via}-{time.time_ns()}"
    received = streamed(base_url, PROMPT, request_id)
    names = [name for name, _ in received]
    assert names[-1] == "done" and set(names[:-1]) == {"token"} and len(names) > 3
    tokens = [GenerateToken.model_validate(data).text for _, data in received[:-1]]
    done = GenerateResponse.model_validate(received[-1][1])
    assert "".join(tokens).strip() == done.text == whole["text"]
    assert (done.provider, done.model) == ("local", "SmolLM2-135M-Instruct")
    assert done.usage.completion_tokens == whole["usage"]["completion_tokens"]
    assert done.usage.prompt_tokens == whole["usage"]["prompt_tokens"]
    status, payload, error = log_row(migrated_pg_url, request_id)
    assert (status, error) == (200, None)
    assert payload["text"] == done.text  # the whole answer, written once at the end


@pytest.mark.parametrize("via", ["direct", "gateway"])
def test_an_error_before_the_first_token_is_an_ordinary_error(served: Served, via: str) -> None:
    base_url = served.backend.base_url if via == "direct" else served.gateway.base_url
    too_long = {"prompt": "word " * 3000, "max_tokens": 4, "stream": True}
    response = httpx.post(base_url + GENERATE, json=too_long, timeout=120)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/json"
    assert "context" in response.json()["error"]["message"]
    unknown = httpx.post(
        base_url + GENERATE, json={**PROMPT, "model": "no-such-model", "stream": True}
    )
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("via", ["direct", "gateway"])
def test_a_client_that_leaves_stops_the_generation(
    served: Served, via: str, migrated_pg_url: str
) -> None:
    # The first token arrives while most of the 400 are still to come; leaving after it
    # must stop the model, and the log row says so.
    base_url = served.backend.base_url if via == "direct" else served.gateway.base_url
    request_id = f"leave-{served.name}-{via}-{time.time_ns()}"
    long = {"prompt": "Count from one to two hundred.", "max_tokens": 400, "temperature": 0}
    with httpx.stream(
        "POST",
        base_url + GENERATE,
        json={**long, "stream": True},
        headers={"X-Request-ID": request_id},
        timeout=120,
    ) as response:
        name, data = next(events(response.iter_lines()))
        assert name == "token" and data["text"]
    status, payload, error = log_row(migrated_pg_url, request_id)
    assert status == 200 and error is not None and "went away" in error
    assert payload["events"] < 400
    # the model is free again: the next generation answers
    after = httpx.post(base_url + GENERATE, json=PROMPT, timeout=120)
    assert after.status_code == 200


@pytest.mark.parametrize("via", ["direct", "gateway"])
def test_the_conformance_scenario_passes(served: Served, via: str) -> None:
    # The conformance suite's own streaming scenario (its test runs the backends without an
    # LLM, where the scenario is skipped): the stream adds up, and the per-response promises
    # hold for its done event.
    base_url = served.backend.base_url if via == "direct" else served.gateway.base_url
    tally = PromiseTally(json.loads(DEFAULT_SPEC.read_text()))
    (scenario,) = [s for s in SCENARIOS if s.name == "generation"]
    with httpx.Client(base_url=base_url, timeout=120) as client:
        scenario.run(Session(client, tally, scenario.name, {}))
    results = {result.name: result for result in tally.finish({})}
    for name in ("stream-adds-up", "usage-total", "max-tokens"):
        result = results[f"analysis_generate/{name}"]
        assert result.status == "passed", result.failures or result.skip_reason
