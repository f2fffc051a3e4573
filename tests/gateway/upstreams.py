"""Small real upstreams for the gateway tests: an ASGI app served by uvicorn on a free port.

Query parameters steer it: ``sleep=S`` waits before answering, ``reject_over=N`` answers
413 without reading a body whose declared length is over N (as the backends do), ``status=N`` (or
``status_<name>=N`` for one upstream only) answers N, ``stream_mb=N`` streams N MiB
(``abort_after_mb=M``: dies after M of them), otherwise it echoes what it received
(headers, body size and sha256). ``python -m tests.gateway.upstreams NAME`` serves it as a
separate process on ``PORT``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from starlette.types import Receive, Scope, Send

from devinfra.ports import free_port

CHUNK = 64 * 1024


@dataclass
class UpstreamState:
    """What the upstream saw, readable from the test thread while a request is in flight."""

    received_bytes: int = 0
    requests: int = 0
    stream_done: bool = False
    ready: bool = True
    last_headers: dict[str, str] = field(default_factory=dict)


async def serve_lifespan(receive: Receive, send: Send) -> None:
    """The ASGI lifespan protocol of an app with nothing to start or stop."""
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})


class EchoUpstream:
    def __init__(self, name: str) -> None:
        self.name = name
        self.state = UpstreamState()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            return
        state = self.state
        state.requests += 1
        state.last_headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
        declared = int(state.last_headers.get("content-length", "0"))
        if "reject_over" in query and declared > int(query["reject_over"]):
            await _json(send, 413, {"error": {"code": "payload_too_large"}})
            return
        digest, size = hashlib.sha256(), 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            digest.update(chunk)
            size += len(chunk)
            state.received_bytes += len(chunk)
            if not message.get("more_body"):
                break
        if "sleep" in query:
            await asyncio.sleep(float(query["sleep"]))
        if scope["path"] == "/ready":
            status = 200 if state.ready else 503
            await _json(send, status, {"ready": state.ready, "backend": self.name})
        elif "stream_mb" in query:
            await self._stream(send, int(query["stream_mb"]), int(query.get("abort_after_mb", -1)))
        else:
            body = {
                "backend": self.name,
                "method": scope["method"],
                "path": scope["path"],
                "raw_path": (scope.get("raw_path") or b"").decode(),
                "query": scope["query_string"].decode(),
                "headers": state.last_headers,
                "body_bytes": size,
                "body_sha256": digest.hexdigest(),
            }
            extra: tuple[tuple[bytes, bytes], ...] = (
                (b"keep-alive", b"timeout=5"),
                (b"x-upstream", b"yes"),
            )
            if "credits" in query:  # what a backend charged, as the real ones say it
                extra = (*extra, (b"x-credits-charged", query["credits"].encode()))
            status = query.get(f"status_{self.name}", query.get("status", "200"))
            await _json(send, int(status), body, extra)

    async def _stream(self, send: Send, mebibytes: int, abort_after_mb: int) -> None:
        self.state.stream_done = False
        total = mebibytes * 1024 * 1024
        headers = [(b"content-type", b"application/octet-stream")]
        headers.append((b"content-length", str(total).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        block = bytes(range(256)) * (CHUNK // 256)
        for i in range(total // CHUNK):
            if i * CHUNK == abort_after_mb * 1024 * 1024:
                raise RuntimeError("upstream dies mid-response (on purpose)")
            await send({"type": "http.response.body", "body": block, "more_body": True})
        self.state.stream_done = True
        await send({"type": "http.response.body", "body": b""})


async def _json(
    send: Send, status: int, payload: dict[str, Any], extra: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*headers, *extra]})
    await send({"type": "http.response.body", "body": body})


class ThreadServer:
    """uvicorn serving an ASGI app in a daemon thread; stop() and start() again on one port."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ThreadServer:
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            proxy_headers=False,  # as `python -m gateway`: the peer is who it is
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None


@contextlib.contextmanager
def serving(app: Any, port: int | None = None) -> Iterator[ThreadServer]:
    server = ThreadServer(app, port).start()
    try:
        yield server
    finally:
        server.stop()


if __name__ == "__main__":
    upstream = EchoUpstream(sys.argv[1] if len(sys.argv) > 1 else "upstream")
    uvicorn.run(upstream, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")
