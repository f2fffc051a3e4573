"""The Django backend over real HTTP: health, the error shape everywhere, limits, docs."""

from __future__ import annotations

import io
import json
import math
import struct
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devinfra.processes import RunningService
from tests.django_backend.helpers import assert_error_shape, raw_request

CONTRACT = Path(__file__).resolve().parents[2] / "contract" / "openapi.json"


@pytest.fixture
def client(django_server: RunningService):
    with httpx.Client(base_url=django_server.base_url, timeout=60) as http:
        yield http


def test_health_live_ready(client: httpx.Client) -> None:
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json()["backend"] == "django"
    assert health.json()["status"] == "ok"
    assert health.headers["x-request-id"]
    assert client.get("/live").json()["live"] is True
    ready = client.get("/ready").json()
    assert ready["ready"] is True
    assert {"postgres", "redis", "vector_store"} <= set(ready["checks"])
    assert all(ready["checks"][name]["ok"] for name in ("postgres", "redis", "vector_store"))


def test_embeddings_generate(client: httpx.Client) -> None:
    response = client.post("/api/v1/embeddings/generate", json={"text": "The Django backend"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dimensions"] == 384 == len(body["embedding"])
    assert body["provider"] == "local"
    assert response.headers["x-cache"] in {"hit", "miss"}


def test_validation_error_is_422_with_the_callers_request_id(client: httpx.Client) -> None:
    response = client.post(
        "/api/v1/embeddings/generate",
        json={"text": "x", "top_k": "5", "unknown": 1},
        headers={"X-Request-ID": "test-django-422"},
    )
    assert response.status_code == 422
    assert response.headers["x-request-id"] == "test-django-422"
    body = response.json()
    assert_error_shape(body, "validation_error", "test-django-422")
    assert {"loc": ["body", "unknown"], "message": "Extra inputs are not permitted",
            "type": "extra_forbidden"} in body["error"]["details"]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/no/such/route", 404, "not_found"),
        ("GET", "/health/", 404, "not_found"),  # paths are exactly the contract's
        ("PUT", "/api/v1/analysis/analyze", 405, "method_not_allowed"),
        ("OPTIONS", "/api/v1/rag/stats", 405, "method_not_allowed"),
        ("DELETE", "/openapi.json", 405, "method_not_allowed"),
        ("DELETE", "/api/v1/rag/collection/bad%20name!", 422, "validation_error"),
        ("DELETE", "/api/v1/rag/collection/never-created-here", 404, "not_found"),
    ],
)
def test_errors_have_the_one_shape(
    client: httpx.Client, method: str, path: str, status: int, code: str
) -> None:
    response = client.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert_error_shape(response.json(), code, response.headers["x-request-id"])
    if status == 405:
        assert response.headers["allow"] in {"POST", "GET"}


def test_405_lists_every_method_of_the_path(client: httpx.Client) -> None:
    response = client.get("/api/v1/rag/collection/anything")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE"


@pytest.mark.parametrize(
    ("content_type", "body", "status", "code"),
    [
        ("text/plain", b"hello", 415, "unsupported_media_type"),
        ("application/json", b"{not json", 400, "bad_request"),
        ("application/json", b"", 422, "validation_error"),
        (None, b'{"text": "no content type is read as JSON"}', 200, None),
    ],
)
def test_body_handling(
    client: httpx.Client, content_type: str | None, body: bytes, status: int, code: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/api/v1/analysis/sentiment", content=body, headers=headers)
    assert response.status_code == status, response.text
    if code is not None:
        assert_error_shape(response.json(), code)


PART = b'--xyz\r\nContent-Disposition: form-data; name="%s"%s\r\n\r\n1\r\n'
END = b"--xyz--\r\n"


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("multipart/form-data", b"--xyz--\r\n", 400),  # no boundary parameter
        ("multipart/form-data; boundary=xyz", b"junk\r\n" + PART % (b"a", b"") + END, 400),
        ("multipart/form-data; boundary=xyz", b"--xyz\r\nbogus\r\n\r\n1\r\n" + END, 400),
        (
            "multipart/form-data; boundary=xyz",
            b"".join(PART % (b"f%d" % i, b'; filename="a.wav"') for i in range(5)) + END,
            400,
        ),
        ("multipart/form-data; boundary=xyz", b"", 422),  # no file part: a missing field
        ("multipart/form-data; boundary=xyz", PART % (b"other", b"") + END, 422),
        ("application/json", b'{"file": "x"}', 415),
    ],
)
def test_multipart_framing_is_judged_like_the_fastapi_backend(
    client: httpx.Client, content_type: str, body: bytes, status: int
) -> None:
    response = client.post(
        "/api/v1/transcription/transcribe", content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code == status, response.text
    code = {400: "bad_request", 415: "unsupported_media_type", 422: "validation_error"}[status]
    assert_error_shape(response.json(), code)
    if status == 422:
        assert response.json()["error"]["details"][0]["loc"] == ["body", "file"]


def test_convert_uploaded_audio(client: httpx.Client) -> None:
    samples = b"".join(struct.pack("<h", int(8000 * math.sin(i / 10))) for i in range(8000))
    wav = io.BytesIO()
    with wave.open(wav, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(samples)
    response = client.post(
        "/api/v1/transcription/convert",
        files={"file": ("tone.wav", wav.getvalue(), "audio/wav")},
        data={"target_format": "flac"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("audio/flac")
    assert response.content[:4] == b"fLaC"


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/api/v1/transcription/transcribe-base64", "application/json"),
        ("/api/v1/transcription/transcribe", "multipart/form-data; boundary=x"),
    ],
)
def test_too_large_body_is_413_before_it_is_read(
    django_server: RunningService, path: str, content_type: str
) -> None:
    head = (
        f"POST {path} HTTP/1.1\nHost: test\nContent-Type: {content_type}\n"
        f"Content-Length: {64 * 1024 * 1024}\nConnection: close\n"
    )
    answer = raw_request(django_server.base_url, head)
    status_line, _, rest = answer.partition(b"\r\n")
    assert b" 413 " in status_line
    assert_error_shape(json.loads(rest.split(b"\r\n\r\n", 1)[1]), "payload_too_large")


def test_chunked_json_body_is_read(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"text": "sent in '
        yield b'chunks"}'

    response = client.post(
        "/api/v1/analysis/keywords", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text


def test_openapi_and_docs(client: httpx.Client) -> None:
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    assert spec.json() == json.loads(CONTRACT.read_text())
    docs = client.get("/docs", headers={"Accept": "text/html"})
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text and "/openapi.json" in docs.text


def test_responses_carry_content_length(client: httpx.Client) -> None:
    for response in (client.get("/health"), client.get("/no/such/route")):
        assert int(response.headers["content-length"]) == len(response.content)
        assert "transfer-encoding" not in response.headers


def test_admin_is_served(client: httpx.Client) -> None:
    assert client.get("/admin/").status_code == 302  # to the login page
    login = client.get("/admin/login/")
    assert login.status_code == 200 and "csrfmiddlewaretoken" in login.text
    assert client.get("/static/admin/css/base.css").status_code == 200
