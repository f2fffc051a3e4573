"""A trivial ASGI backend for the gateway benchmark when the real one cannot start.

``PORT=9000 python -m bench.tiny_upstream``: /health, /live, /ready and
POST /api/v1/embeddings/generate answer fixed JSON (the body is read, as a real backend would).
"""

from __future__ import annotations

import json
import os

import uvicorn
from starlette.types import Receive, Scope, Send

_HEALTH = json.dumps({"status": "ok", "service": "ml-api", "version": "1.0.0", "backend": "tiny"})
_EMBEDDING = json.dumps(
    {"embedding": [0.01] * 384, "model": "tiny", "provider": "none", "dimensions": 384}
)
_BODIES = {
    "/health": _HEALTH.encode(),
    "/live": b'{"status": "ok"}',
    "/ready": b'{"ready": true, "status": "ok", "checks": {}}',
    "/api/v1/embeddings/generate": _EMBEDDING.encode(),
}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    while (await receive()).get("more_body"):
        pass
    body = _BODIES.get(scope["path"])
    status = 200 if body is not None else 404
    body = body or b'{"error": {"code": "not_found", "message": "no route", "details": []}}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(os.environ.get("PORT", "9000")),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )
