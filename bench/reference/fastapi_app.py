"""A bare FastAPI app: plain routes returning dicts (FastAPI serialises them), no middleware.

Served by the FastAPI backend's own granian launcher (one worker, uvloop, same backlog).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI

from backends.fastapi_service.__main__ import serve_granian
from backends.fastapi_service.settings import FastAPIServiceSettings

FACTORY = "bench.reference.fastapi_app:create_app"


def create_app() -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        now = datetime.now(UTC)
        return {"status": "ok", "service": "ml-api", "backend": "fastapi-bare", "timestamp": now}

    @app.get("/live")
    async def live() -> dict[str, Any]:
        return {"live": True, "timestamp": datetime.now(UTC)}

    @app.get("/ready")
    async def ready() -> dict[str, Any]:
        return {"ready": True, "status": "ok", "checks": {}}

    return app


if __name__ == "__main__":
    serve_granian(FastAPIServiceSettings(), factory=FACTORY)
