"""A local generation that would outlast the gateway's timeout ends at its deadline instead.

The backend and the gateway read the same GATEWAY_TIMEOUTS; with 5 s for analysis, the
backend's local LLM (the packaged SmolLM2 GGUF) stops each generation after 3/4 of it,
3.75 s from the moment it is queued (shared_schemas/timeouts.py), and answers normally with
finish_reason "length", as OpenAI does when it stops early. The prompt asks for far more
than 3.75 s of text. Without the deadline (the backend not told the gateway's timeout, so
45 s): the whole answer is the gateway's 504 after 5 s, and a stream, which the gateway
never times out while tokens come, went on for 45 s (1,942 tokens) before its "length".
So the stream is checked against the clock: it ends before the gateway's timeout, the
bound a whole answer gets. The text may be empty: on a busy machine the deadline can
pass before the first token.

One llama.cpp thread (LOCAL_LLM_THREADS=1): the deadline is checked between tokens, and
with two threads on two busy cores (load average ~4) one token took up to 2.6 s, so
answers came 2.6 s after a 6 s deadline (and 120-190 tokens in it); with one thread on
the same machine, 20 ms after it at most (340-440 tokens).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devinfra.processes import RunningService, running_service
from e2e.conftest import BACKEND_MODULES, backend_env
from e2e.test_generation_stream import GENERATE, events
from shared_schemas.generation import GenerateResponse

GATEWAY_TIMEOUT_S = 5.0
MAX_TOKENS = 4000
# does not end by itself for 600 tokens and more (tests/core/test_llm_local_limits.py)
ENDLESS = {
    "prompt": "Write a 5000-word essay on the history of Rome.",
    "max_tokens": MAX_TOKENS,
    "temperature": 0,
}


@pytest.fixture(scope="module", params=sorted(BACKEND_MODULES))
def gateway(
    request: pytest.FixtureRequest,
    migrated_pg_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningService]:
    """A gateway with a 5 s timeout for analysis, in front of one backend with the local LLM
    that reads the same setting."""
    name: str = request.param
    env = {
        **backend_env(migrated_pg_url, redis_url),
        "LLM_PROVIDER": "local",
        "GATEWAY_TIMEOUTS": json.dumps({"analysis": GATEWAY_TIMEOUT_S}),
        "LOCAL_LLM_THREADS": "1",
    }
    log_dir = tmp_path_factory.mktemp(f"deadline-{name}")
    with running_service(BACKEND_MODULES[name], env, log_dir) as backend:
        # load the model first: loading counts toward the first generation's deadline
        warm = httpx.post(
            backend.base_url + GENERATE, json={"prompt": "Hi", "max_tokens": 2}, timeout=120
        )
        assert warm.status_code == 200, warm.text
        gateway_env = {
            **env,
            "ML_SERVICE_BACKEND": name,
            f"ML_BACKEND_{name.upper()}_URL": backend.base_url,
        }
        with running_service("gateway", gateway_env, log_dir) as gateway:
            yield gateway


def _stopped_early(answer: GenerateResponse) -> None:
    assert answer.finish_reason == "length", answer.finish_reason
    assert answer.usage.completion_tokens < MAX_TOKENS, answer.usage


def test_a_long_generation_answers_length_before_the_gateways_timeout(
    gateway: RunningService,
) -> None:
    started = time.monotonic()
    response = httpx.post(gateway.base_url + GENERATE, json=ENDLESS, timeout=60)
    waited = time.monotonic() - started
    # without the deadline: 504 gateway_timeout after 5 s
    assert response.status_code == 200, response.text
    answer = GenerateResponse.model_validate(response.json())
    print(f"200 after {waited:.2f} s, {answer.usage.completion_tokens} tokens")
    _stopped_early(answer)


def test_a_long_stream_ends_with_done_and_length(gateway: RunningService) -> None:
    started = time.monotonic()
    with httpx.stream(
        "POST", gateway.base_url + GENERATE, json={**ENDLESS, "stream": True}, timeout=60
    ) as response:
        assert response.status_code == 200, response.read()
        received: list[tuple[str, Any]] = list(events(response.iter_lines()))
    waited = time.monotonic() - started
    names = [name for name, _ in received]
    assert names[-1] == "done" and set(names[:-1]) <= {"token"}, names[-3:]
    done = GenerateResponse.model_validate(received[-1][1])
    print(f"stream done after {waited:.2f} s, {done.usage.completion_tokens} tokens")
    _stopped_early(done)
    assert waited < GATEWAY_TIMEOUT_S  # without the deadline: 45 s
