"""A bare FastAPI app: plain routes returning dicts (FastAPI serialises them), no middleware.

Served by the FastAPI backend's own launcher for ``FASTAPI_SERVER`` (granian by default,
or uvicorn; one worker, uvloop, same backlog), so each server is compared with itself.
``POST /api/v1/embeddings/generate`` is the floor of a cached answer: it parses the JSON
body and sends back the bytes ``bench.reference.answer`` gives it (the backend's own
cached answer, so both send the same size).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from backends.fastapi_service.__main__ import serve_granian, serve_uvicorn
from backends.fastapi_service.settings import FastAPIServiceSettings
from bench.reference.answer import EMBED_PATH, cached_answer

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

    @app.post(EMBED_PATH)
    async def embed(request: Request) -> Response:
        await request.json()
        return Response(cached_answer(), media_type="application/json")

    return app


def main() -> None:
    settings = FastAPIServiceSettings()
    if settings.server == "granian":
        serve_granian(settings, factory=FACTORY)
    else:
        serve_uvicorn(settings, create_app())


if __name__ == "__main__":
    main()
