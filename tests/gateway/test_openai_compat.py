"""/v1 at the gateway: OpenAI's error object, auth and rate limits, parameters refused clearly.

The translations against real backends are in e2e/test_openai_sdk.py; these need no
backend, or one that is not there.
"""

from __future__ import annotations

import secrets

import pytest

from tests.gateway.conftest import make_settings, run_gateway
from tests.gateway.upstreams import ThreadServer


def assert_openai_error(body: object, *, type_: str, code: str | None = None) -> None:
    assert isinstance(body, dict) and set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    assert error["type"] == type_
    if code is not None:
        assert error["code"] == code


def test_api_key_required_on_v1_in_openais_shape(fast: ThreadServer) -> None:
    settings = make_settings({"fast": fast.url}, "fast", api_keys="key-one")
    with run_gateway(settings) as running:
        missing = running.client.get("/v1/models", headers={"X-Request-ID": "v1-a"})
        wrong = running.client.get("/v1/models", headers={"Authorization": "Bearer nope"})
    assert missing.status_code == 401
    assert_openai_error(missing.json(), type_="invalid_request_error", code="invalid_api_key")
    assert missing.headers["x-request-id"] == "v1-a"
    assert missing.headers["www-authenticate"] == "Bearer"
    assert wrong.status_code == 401


def test_rate_limit_applies_to_v1(fast: ThreadServer, redis_url: str) -> None:
    key = "key-" + secrets.token_hex(4)
    settings = make_settings(
        {"fast": fast.url}, "fast", api_keys=key, rate_limit_per_minute=1, redis_url=redis_url
    )
    headers = {"Authorization": f"Bearer {key}"}
    with run_gateway(settings) as running:
        # the first request is admitted (then fails on the echo upstream's non-contract answer)
        running.client.post("/v1/embeddings", json={"input": "a", "model": "m"}, headers=headers)
        limited = running.client.post(
            "/v1/embeddings", json={"input": "a", "model": "m"}, headers=headers
        )
    assert limited.status_code == 429
    assert_openai_error(limited.json(), type_="requests", code="rate_limit_exceeded")
    assert int(limited.headers["retry-after"]) >= 1


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v1/nothing-here", 404),
        ("DELETE", "/v1/embeddings", 405),
        ("POST", "/v1/models", 405),
    ],
)
def test_unknown_routes_and_methods(
    fast: ThreadServer, method: str, path: str, status: int
) -> None:
    with run_gateway(make_settings({"fast": fast.url}, "fast")) as running:
        response = running.client.request(method, path)
    assert response.status_code == status
    assert_openai_error(response.json(), type_="invalid_request_error")


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/embeddings", {"model": "m"}, "input"),
        ("/v1/embeddings", {"input": [[1, 2, 3]], "model": "m"}, "input"),
        ("/v1/embeddings", {"input": [], "model": "m"}, "input"),
        (
            "/v1/embeddings",
            {"input": "a", "model": "m", "encoding_format": "hex"},
            "encoding_format",
        ),
        ("/v1/chat/completions", {"model": "m", "messages": []}, "messages"),
        (
            "/v1/chat/completions",
            {"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 2},
            "n",
        ),
        (
            "/v1/chat/completions",
            {"model": "m", "messages": [{"role": "assistant", "content": "hi"}]},
            "messages",
        ),
        (
            "/v1/chat/completions",
            {
                "model": "m",
                "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
            },
            "messages.0.content",
        ),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(
    dead_url: str, path: str, body: dict[str, object], param: str
) -> None:
    # refused before any backend is called: the backend here is not even running
    with run_gateway(make_settings({"dead": dead_url}, "dead")) as running:
        response = running.client.post(path, json=body)
    assert response.status_code == 400, response.text
    assert_openai_error(response.json(), type_="invalid_request_error")
    assert response.json()["error"]["param"] == param


def test_a_body_that_is_not_json_is_400(dead_url: str) -> None:
    with run_gateway(make_settings({"dead": dead_url}, "dead")) as running:
        response = running.client.post(
            "/v1/chat/completions", content=b"{nope", headers={"content-type": "application/json"}
        )
    assert response.status_code == 400
    assert_openai_error(response.json(), type_="invalid_request_error")


def test_transcription_without_multipart_is_400(dead_url: str) -> None:
    with run_gateway(make_settings({"dead": dead_url}, "dead")) as running:
        response = running.client.post("/v1/audio/transcriptions", json={"file": "x"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "file"


def test_too_large_a_body_is_413(dead_url: str) -> None:
    settings = make_settings({"dead": dead_url}, "dead", max_body_bytes=2048)
    with run_gateway(settings) as running:
        response = running.client.post("/v1/embeddings", json={"input": "x" * 4096, "model": "m"})
    assert response.status_code == 413
    assert_openai_error(response.json(), type_="invalid_request_error")


def test_an_unreachable_backend_is_502_server_error(dead_url: str) -> None:
    with run_gateway(make_settings({"dead": dead_url}, "dead")) as running:
        response = running.client.post("/v1/embeddings", json={"input": "a", "model": "m"})
        metrics = running.client.get("/metrics").text
    assert response.status_code == 502
    assert_openai_error(response.json(), type_="server_error")
    assert response.headers["x-ml-backend"] == "dead"
    assert 'group="openai"' in metrics
