"""The gateway ASGI app: own routes, auth, rate limits, then the streaming forwarder."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
from starlette.types import Receive, Scope, Send

from gateway.admission import Admission
from gateway.errors import GatewayError, send_error, send_json
from gateway.headers import Incoming, read_request
from gateway.health import health_body, readiness
from gateway.http1 import Http1Upstream
from gateway.keys import ADMIN_PATH_PREFIX
from gateway.metrics import CONTENT_TYPE, GatewayMetrics, route_group
from gateway.openai_compat import OpenAICompat
from gateway.proxy import ClientDisconnected, Forwarder
from gateway.registry import build_registry
from gateway.settings import GatewaySettings
from gateway.shadow import ShadowMirror, shadow_backend
from gateway.shadow_report import REPORT_PATH, build_report
from gateway.shadow_store import ShadowStore
from gateway.upstream import HttpxUpstream, Upstream
from gateway.usage import USAGE_PATH, usage_answer

log = logging.getLogger("gateway")
# nginx's convention for "the client closed the connection before we answered".
CLIENT_CLOSED = 499
OwnRoute = Callable[[Send, Incoming], Awaitable[None]]


class GatewayApp:
    """Plain ASGI: fewer layers than a framework on the one path every request takes.

    /health, /ready and /metrics are answered here, before auth and rate limits;
    ``/gateway/usage`` after them (an admin key); every other path (``/openapi.json`` and
    ``/docs`` included) goes to the backend.
    """

    def __init__(
        self, settings: GatewaySettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self.registry = build_registry(settings)
        self.metrics = GatewayMetrics()
        self.admission = Admission(settings, self.metrics)
        self._injected = transport
        self._forwarder: Forwarder | None = None
        self._guarded = self.admission.enabled
        self._health_timeout_s = settings.timeout_for("health")
        self._gateway_secret = settings.gateway_secret.encode("ascii")
        self._backend_header = (b"x-ml-backend", self.registry.selected.header_value)
        self._openai = OpenAICompat(
            self.registry, settings, self.metrics, self._admit if self._guarded else None
        )
        self._own: dict[str, OwnRoute] = {
            "/health": self._health,
            "/ready": self._ready,
            "/metrics": self._metrics,
        }
        self._proxied = 0  # client requests in flight to a backend (the shadow's noise waits)
        self._shadow = self._shadow_mirror(settings)

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Own the pooled upstream client and the admission's clients for the app's lifetime."""
        upstream: Upstream = (
            HttpxUpstream(self._injected)
            if self._injected is not None
            else Http1Upstream(self.settings.pool_size, self.settings.keepalive_s)
        )
        await self.admission.start()
        self._forwarder = Forwarder(upstream, self.registry, self.settings, self.metrics)
        self._openai.upstream = upstream
        if self._shadow is not None:  # its worker process is running before any request
            await self._shadow.start(upstream)
        log.info(
            "gateway -> %s (%s)%s",
            self.registry.selected.name,
            self.registry.selected.base_url,
            f", fallback {self.registry.fallback.name}" if self.registry.fallback else "",
        )
        try:
            yield
        finally:
            if self._shadow is not None:
                await self._shadow.aclose()
            if self._report_store is not None:
                await self._report_store.stop()
            self._forwarder = self._openai.upstream = None
            await self.admission.aclose()
            if self._injected is None:  # an injected transport belongs to its caller
                await upstream.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        else:  # websockets are not part of the API
            await receive()
            await send({"type": "websocket.close", "code": 1003})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()
        stack = contextlib.AsyncExitStack()
        try:
            await stack.enter_async_context(self.lifespan())
        except Exception as exc:
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await stack.aclose()
        await send({"type": "lifespan.shutdown.complete"})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        path: str = scope["path"]
        incoming = read_request(scope, self.admission.auth, self._gateway_secret)
        own = self._own.get(path)
        if own is not None:
            if scope["method"] not in ("GET", "HEAD"):
                # the contract's own routes are GET-only: 405 with Allow, as the backends do
                headers = ((b"allow", b"GET"), *self._own_headers(incoming))
                await send_error(send, 405, "Method not allowed", incoming.request_id, headers)
                return
            await own(send, incoming)
            return
        if path.startswith("/v1/"):  # OpenAI's API, translated (gateway.openai_compat)
            await self._openai(scope, receive, send, incoming)
            return
        group = route_group(path)
        backend, status = self.registry.selected.name, CLIENT_CLOSED
        try:
            grant = await self.admission.admit(incoming, path) if self._guarded else None
            if path.startswith(ADMIN_PATH_PREFIX):
                status = await self._admin(scope, send, incoming)
                return
            if incoming.content_length is not None and (
                incoming.content_length > self.settings.max_body_bytes
            ):
                raise GatewayError(413, "request body too large")
            if self._forwarder is None:
                raise GatewayError(503, "gateway is not started (lifespan not run)")
            mirrored = self._shadow.sampled(scope) if self._shadow is not None else None
            capture = self._capture if mirrored else 0
            charging = self.admission.charging(send, grant)
            self._proxied += 1
            try:
                outcome = await self._forwarder.forward(
                    scope, receive, charging, incoming, group, capture
                )
            finally:
                self._proxied -= 1
            status, backend = outcome.status, outcome.backend
            if mirrored is not None and self._shadow is not None:  # the answer is sent
                self._shadow.submit(mirrored, scope, incoming, outcome, time.perf_counter() - start)
        except GatewayError as exc:
            status = exc.status
            headers = (*exc.headers, *self._own_headers(incoming))
            await send_error(send, status, exc.message, incoming.request_id, headers, exc.details)
        except ClientDisconnected:
            pass
        finally:
            self.metrics.observe(
                backend, group, scope["method"], status, time.perf_counter() - start
            )

    async def _admit(self, incoming: Incoming) -> None:
        """Admission for a request answered elsewhere (gateway.openai_compat)."""
        await self.admission.admit(incoming, incoming.path)

    async def _admin(self, scope: Scope, send: Send, incoming: Incoming) -> int:
        """``/gateway/...`` (with auth on, only an admin key gets here): usage, shadow report."""
        path = scope["path"]
        if path not in (USAGE_PATH, REPORT_PATH):
            raise GatewayError(404, f"no route {path}")
        if scope["method"] != "GET":
            raise GatewayError(405, "Method not allowed", headers=((b"allow", b"GET"),))
        if path == REPORT_PATH:
            body = await self._shadow_report()
        else:
            store = self.admission.key_store
            if store is None:
                raise GatewayError(404, f"no route {path} (usage needs database keys)")
            body = await usage_answer(store, scope.get("query_string", b""))
        await send_json(send, 200, body, self._own_headers(incoming))
        return 200

    def _shadow_mirror(self, settings: GatewaySettings) -> ShadowMirror | None:
        candidate = shadow_backend(settings, self.registry)
        self._capture = settings.shadow_capture_bytes
        self._report_store: ShadowStore | None = None
        if settings.database_url:
            self._report_store = ShadowStore(
                settings.database_url,
                settings.shadow_flush_interval_s,
                settings.shadow_examples_per_field,
                settings.shadow_buffer_rows,
            )
        if candidate is None:
            return None
        return ShadowMirror(
            settings,
            self.registry.selected,
            candidate,
            self.metrics,
            idle=lambda: self._proxied == 0,
        )

    async def _shadow_report(self) -> dict[str, Any]:
        """GET /gateway/shadow/report: the stored comparisons. They hold real request
        values, so with auth on it needs an admin key, like the usage read-back."""
        if self._report_store is None:
            raise GatewayError(503, "no DATABASE_URL: shadow results are not stored")
        if self._shadow is not None:
            await self._shadow.flush()  # the worker writes the results it holds
        candidate = self._shadow.candidate.name if self._shadow is not None else None
        dropped = self._shadow.drops if self._shadow is not None else None
        pool = await self._report_store.pool()
        return await build_report(pool, self.settings, candidate, dropped)

    def _own_headers(self, incoming: Incoming) -> tuple[tuple[bytes, bytes], ...]:
        return ((b"x-request-id", incoming.request_id.encode()), self._backend_header)

    async def _health(self, send: Send, incoming: Incoming) -> None:
        await send_json(send, 200, health_body(self.registry), self._own_headers(incoming))

    async def _ready(self, send: Send, incoming: Incoming) -> None:
        if self._forwarder is None:
            await send_error(send, 503, "gateway is not started", incoming.request_id)
            return
        status, body = await readiness(
            self._forwarder.upstream, self.registry, self._health_timeout_s, incoming.request_id
        )
        headers = self._own_headers(incoming)
        if status == 200:
            await send_json(send, 200, body, headers)
        else:
            await send_error(
                send, status, body["message"], incoming.request_id, headers, body["details"]
            )

    async def _metrics(self, send: Send, incoming: Incoming) -> None:
        body = self.metrics.render()
        headers = [
            (b"content-type", CONTENT_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            *self._own_headers(incoming),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def create_app(
    settings: GatewaySettings | None = None, transport: httpx.AsyncBaseTransport | None = None
) -> GatewayApp:
    """Build the gateway; fails here (not on first request) when the backend is unknown."""
    return GatewayApp(settings or GatewaySettings(), transport)
