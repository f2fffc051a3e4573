"""The gateway ASGI app: own routes, auth, rate limits, then the streaming forwarder."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
from starlette.types import Receive, Scope, Send

from gateway.auth import ApiKeys
from gateway.errors import GatewayError, send_error, send_json
from gateway.headers import Incoming, read_request
from gateway.health import health_body, readiness
from gateway.http1 import Http1Upstream
from gateway.metrics import CONTENT_TYPE, GatewayMetrics, route_group
from gateway.openai_compat import OpenAICompat
from gateway.proxy import ClientDisconnected, Forwarder
from gateway.rate_limit import RateLimiter
from gateway.registry import build_registry
from gateway.settings import GatewayConfigError, GatewaySettings
from gateway.shadow import ShadowMirror, ShadowStore, shadow_backend
from gateway.shadow_report import REPORT_PATH, build_report
from gateway.upstream import HttpxUpstream, Upstream

log = logging.getLogger("gateway")
# nginx's convention for "the client closed the connection before we answered".
CLIENT_CLOSED = 499
OwnRoute = Callable[[Send, Incoming], Awaitable[None]]


class GatewayApp:
    """Plain ASGI: fewer layers than a framework on the one path every request takes.

    /health, /ready and /metrics are answered here, before auth and rate limits; every
    other path (``/openapi.json`` and ``/docs`` included) goes to the backend.
    """

    def __init__(
        self, settings: GatewaySettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self.registry = build_registry(settings)
        if settings.rate_limit_per_minute and not settings.redis_url:
            raise GatewayConfigError("GATEWAY_RATE_LIMIT_PER_MINUTE is set but REDIS_URL is empty")
        self.keys = ApiKeys(settings.api_key_list)
        self.metrics = GatewayMetrics()
        self._injected = transport
        self._forwarder: Forwarder | None = None
        self._limiter: RateLimiter | None = None
        self._guarded = self.keys.enabled or bool(settings.rate_limit_per_minute)
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
            REPORT_PATH: self._shadow_report,
        }
        self._shadow = self._shadow_mirror(settings)

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Own the pooled upstream client and the Redis client for the app's lifetime."""
        upstream: Upstream = (
            HttpxUpstream(self._injected)
            if self._injected is not None
            else Http1Upstream(self.settings.pool_size, self.settings.keepalive_s)
        )
        if self.settings.rate_limit_per_minute and self.settings.redis_url:
            self._limiter = RateLimiter(
                self.settings.redis_url,
                self.settings.rate_limit_per_minute,
                self.metrics,
                self.settings.rate_limit_redis_timeout_s,
            )
        self._forwarder = Forwarder(upstream, self.registry, self.settings, self.metrics)
        self._openai.upstream = upstream
        if self._shadow is not None:
            self._shadow.upstream = upstream
            if self._shadow.store is not None:
                await self._shadow.store.start()
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
                await self._shadow.drain()
            if self._report_store is not None:
                await self._report_store.stop()
            self._forwarder = self._openai.upstream = None
            if self._limiter is not None:
                await self._limiter.aclose()
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
        incoming = read_request(scope, self.keys.enabled, self._gateway_secret)
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
            if self._guarded:
                await self._admit(incoming)
            if incoming.content_length is not None and (
                incoming.content_length > self.settings.max_body_bytes
            ):
                raise GatewayError(413, "request body too large")
            if self._forwarder is None:
                raise GatewayError(503, "gateway is not started (lifespan not run)")
            mirrored = self._shadow.sampled(scope) if self._shadow is not None else None
            outcome = await self._forwarder.forward(
                scope, receive, send, incoming, group, self._capture if mirrored else 0
            )
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
        """API-key check, then the rate limit (per key when authenticated, else per client IP)."""
        identity = None
        if self.keys.enabled:
            key = self.keys.identify(incoming.credential)
            if key is None:
                message = "missing API key" if incoming.credential is None else "invalid API key"
                raise GatewayError(
                    401,
                    f"{message}: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                    headers=((b"www-authenticate", b"Bearer"),),
                )
            identity = "key:" + key
            incoming.attribute(None, None, key)
        if self._limiter is not None:
            retry = await self._limiter.check(identity or "ip:" + incoming.client_ip)
            if retry is not None:
                raise GatewayError(
                    429,
                    f"rate limit of {self._limiter.per_minute} requests per minute exceeded",
                    headers=((b"retry-after", str(retry).encode()),),
                )

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
            settings, self.registry.selected, candidate, self.metrics, self._report_store
        )

    async def _shadow_report(self, send: Send, incoming: Incoming) -> None:
        """GET /gateway/shadow/report: the stored comparisons (behind the API keys, if any)."""
        headers = self._own_headers(incoming)
        if self.keys.enabled and self.keys.identify(incoming.credential) is None:
            await send_error(send, 401, "the shadow report needs an API key", incoming.request_id,
                             ((b"www-authenticate", b"Bearer"), *headers))  # fmt: skip
            return
        if self._report_store is None:
            await send_error(send, 503, "no DATABASE_URL: shadow results are not stored",
                             incoming.request_id, headers)  # fmt: skip
            return
        if self._shadow is not None and self._shadow.store is not None:
            await self._shadow.store.flush_or_keep()
        candidate = self._shadow.candidate.name if self._shadow is not None else None
        report = await build_report(await self._report_store.pool(), self.settings, candidate)
        await send_json(send, 200, report, headers)

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
