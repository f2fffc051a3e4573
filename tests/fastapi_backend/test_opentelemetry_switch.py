"""FASTAPI_OPENTELEMETRY: true hands requests to FastAPI's native OpenTelemetry, false not.

A tracer provider that records the spans it is asked for is installed as the global one
(OpenTelemetry's own global, restored after the test); the app is built by our factory
from the setting alone and answers one request in-process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, Span, SpanKind, Tracer, TracerProvider
from opentelemetry.util.types import Attributes

from backends.fastapi_service.app import create_app
from backends.fastapi_service.settings import FastAPIServiceSettings


class RecordingTracer(Tracer):
    def __init__(self, started: list[tuple[str, SpanKind]]) -> None:
        self.started = started

    def start_span(self, name: str, *args: Any, kind: SpanKind = SpanKind.INTERNAL,
                   **kwargs: Any) -> Span:  # fmt: skip
        self.started.append((name, kind))
        return NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)

    def start_as_current_span(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return trace.use_span(self.start_span(name, *args, **kwargs), end_on_exit=True)


class RecordingTracerProvider(TracerProvider):
    def __init__(self) -> None:
        self.started: list[tuple[str, SpanKind]] = []

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes | None = None,
    ) -> Tracer:
        return RecordingTracer(self.started)


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> RecordingTracerProvider:
    recording = RecordingTracerProvider()
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", recording)
    return recording


def _settings(opentelemetry: bool) -> FastAPIServiceSettings:
    return FastAPIServiceSettings(
        _env_file=None, opentelemetry=opentelemetry, database_url=None, redis_url=None,
        request_logging=False,
    )  # fmt: skip


async def _spans_of_one_request(
    opentelemetry: bool, provider: RecordingTracerProvider
) -> Sequence[tuple[str, SpanKind]]:
    app = create_app(_settings(opentelemetry))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://backend.test") as client:
        # no lifespan: a path no route matches is answered without the engine
        response = await client.get("/no-such-path")
    assert response.status_code == 404
    return list(provider.started)


async def test_true_traces_each_request(provider: RecordingTracerProvider) -> None:
    started = await _spans_of_one_request(True, provider)
    assert [kind for _, kind in started].count(SpanKind.SERVER) == 1, started


async def test_false_leaves_requests_untraced(provider: RecordingTracerProvider) -> None:
    assert await _spans_of_one_request(False, provider) == []
