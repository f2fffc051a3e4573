"""The FastAPI app factory: typed settings in, an app whose lifespan owns every resource."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.telemetry import TelemetryConfig

from backends.core.api import metrics_page
from backends.core.metering.meter import Meter
from backends.core.metering.prices import CreditSettings
from backends.core.persistence.records import RequestRecord
from backends.core.settings import EngineSettings
from backends.fastapi_service.errors import install_error_handlers
from backends.fastapi_service.middleware import RequestContextMiddleware
from backends.fastapi_service.request_log import RequestLogWriter
from backends.fastapi_service.resources import Resources, open_resources
from backends.fastapi_service.routes import install_routes
from backends.fastapi_service.settings import FastAPIServiceSettings
from shared_schemas import API_VERSION, request_meta
from shared_schemas.collector import tune_collector

_TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
CONTRACT_PATH = Path(__file__).resolve().parents[2] / "contract" / "openapi.json"


@cache
def committed_contract() -> dict[str, Any]:
    """The committed OpenAPI document: every backend serves the same contract."""
    document: dict[str, Any] = json.loads(CONTRACT_PATH.read_text())
    return document


def create_served_app() -> FastAPI:
    """The app as ``python -m backends.fastapi_service`` serves it: ``create_app`` with the
    garbage collector tuned once the lifespan has started (``tune_collector``)."""
    return create_app(tune_gc=True)


def create_app(
    settings: FastAPIServiceSettings | None = None,
    engine_settings: EngineSettings | None = None,
    credit_settings: CreditSettings | None = None,
    *,
    tune_gc: bool = False,
) -> FastAPI:
    settings = settings or FastAPIServiceSettings()
    engine_settings = engine_settings or EngineSettings()
    meter = Meter(credit_settings or CreditSettings())  # a bad price table fails here
    log_sink = _LogSink()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_resources(settings, engine_settings) as resources:
            app.state.resources = resources
            log_sink.writer = resources.writer
            if tune_gc:
                tune_collector()
            yield

    app = FastAPI(
        title="ML API (FastAPI backend)",
        version=API_VERSION,
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,  # the contract's paths are exact: /health/ is a 404, as in Django
        telemetry=None if settings.opentelemetry else _TELEMETRY_OFF,
    )
    install_error_handlers(app)
    install_routes(app)
    _install_docs(app)
    _install_metrics(app)
    app.add_middleware(
        RequestContextMiddleware,
        service_name=settings.service_name,
        submit=log_sink.submit if settings.request_logging else None,
        gateway_secret=settings.gateway_secret,
        meter=meter,
    )
    return app


class _LogSink:
    """Hands rows to the lifespan's writer (none yet before start-up, or without a database).

    The writer is kept here when the lifespan opens it: looking it up in ``app.state`` per
    row went through Starlette's ``State.__getattr__`` (~2% of a cached answer's event-loop
    samples, py-spy).
    """

    def __init__(self) -> None:
        self.writer: RequestLogWriter | None = None

    def submit(self, record: RequestRecord) -> None:
        writer = self.writer
        if writer is not None:
            writer.submit(record)


def _install_metrics(app: FastAPI) -> None:
    @app.get(request_meta.METRICS_PATH, include_in_schema=False)
    async def metrics() -> Response:
        resources: Resources = app.state.resources
        return Response(resources.metrics.render(), media_type=metrics_page.CONTENT_TYPE)


def _install_docs(app: FastAPI) -> None:
    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(committed_contract())

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="ML API - docs")

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title="ML API - ReDoc")
