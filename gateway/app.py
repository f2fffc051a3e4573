"""The gateway ASGI app: own routes, auth, rate limits, then the streaming forwarder."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import parse_qsl

import asyncpg
import httpx
from starlette.types import Message, Receive, Scope, Send

from gateway.auth import ApiKeys
from gateway.budgets import BudgetExceeded, Budgets, charged_credits
from gateway.errors import GatewayError, send_error, send_json
from gateway.headers import Incoming, read_request
from gateway.health import health_body, readiness
from gateway.http1 import Http1Upstream
from gateway.keys import (
    ADMIN_PATH_PREFIX,
    KeyGrant,
    KeyStore,
    KeyStoreUnavailable,
    scope_of,
    utc_now,
)
from gateway.metrics import CONTENT_TYPE, GatewayMetrics, route_group
from gateway.openai_compat import OpenAICompat
from gateway.proxy import ClientDisconnected, Forwarder
from gateway.rate_limit import RateLimiter
from gateway.registry import build_registry
from gateway.settings import GatewayConfigError, GatewaySettings
from gateway.upstream import HttpxUpstream, Upstream
from gateway.usage import UsageQuery, UsageQueryError, usage_rows
from shared_schemas.request_meta import CREDITS_HEADER

log = logging.getLogger("gateway")
# nginx's convention for "the client closed the connection before we answered".
CLIENT_CLOSED = 499
OwnRoute = Callable[[Send, Incoming], Awaitable[None]]
_CREDITS = CREDITS_HEADER.encode()
_KEY_HINT = "send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
# Seconds a client should wait after a 503 from a key lookup (Postgres unreachable).
_KEY_STORE_RETRY_S = b"5"


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
        if settings.database_keys and not (settings.database_url and settings.redis_url):
            raise GatewayConfigError(
                "GATEWAY_DATABASE_KEYS needs DATABASE_URL (the keys) and REDIS_URL (budgets)"
            )
        self._key_store: KeyStore | None = None
        self._budgets: Budgets | None = None
        self._auth = self.keys.enabled or settings.database_keys
        self.metrics = GatewayMetrics()
        self._injected = transport
        self._forwarder: Forwarder | None = None
        self._limiter: RateLimiter | None = None
        self._guarded = self._auth or bool(settings.rate_limit_per_minute)
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
        reconciling = None
        if self.settings.database_keys:
            reconciling = await self._start_key_store()
        self._forwarder = Forwarder(upstream, self.registry, self.settings, self.metrics)
        self._openai.upstream = upstream
        log.info(
            "gateway -> %s (%s)%s",
            self.registry.selected.name,
            self.registry.selected.base_url,
            f", fallback {self.registry.fallback.name}" if self.registry.fallback else "",
        )
        try:
            yield
        finally:
            self._forwarder = self._openai.upstream = None
            if self._limiter is not None:
                await self._limiter.aclose()
            if reconciling is not None:
                reconciling.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reconciling
            if self._budgets is not None:
                await self._budgets.aclose()
            if self._key_store is not None:
                await self._key_store.aclose()
            if self._injected is None:  # an injected transport belongs to its caller
                await upstream.aclose()

    async def _start_key_store(self) -> asyncio.Task[None]:
        """Open the key store and the budgets; returns the periodic reconciliation task."""
        settings = self.settings
        assert settings.database_url and settings.redis_url  # checked in __init__
        self._key_store = KeyStore(
            settings.database_url,
            pool_size=settings.key_pool_size,
            timeout_s=settings.key_lookup_timeout_s,
            cache_ttl_s=settings.key_cache_ttl_s,
            cache_size=settings.key_cache_size,
        )
        await self._key_store.start()
        self._budgets = Budgets(settings.redis_url, self.metrics, settings.budget_redis_timeout_s)
        return asyncio.create_task(self._reconcile_budgets())

    async def _reconcile_budgets(self) -> None:
        """At start-up, then every GATEWAY_BUDGET_RECONCILE_S: Redis counters from Postgres."""
        assert self._budgets is not None and self._key_store is not None
        while True:
            try:
                raised = await self._budgets.reconcile(self._key_store.pool)
                if raised:
                    log.info(
                        "budgets: %d counter(s) raised to the credits Postgres recorded", raised
                    )
            except Exception as exc:  # Postgres or Redis away: try again next period
                log.warning("budget reconciliation failed: %s", type(exc).__name__)
            await asyncio.sleep(self.settings.budget_reconcile_s)

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
        incoming = read_request(scope, self._auth, self._gateway_secret)
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
        grant: KeyGrant | None = None
        try:
            if self._guarded:
                grant = await self._grant(incoming, path)
            if path.startswith(ADMIN_PATH_PREFIX):
                status = await self._admin(scope, send, incoming)
                return
            if incoming.content_length is not None and (
                incoming.content_length > self.settings.max_body_bytes
            ):
                raise GatewayError(413, "request body too large")
            if self._forwarder is None:
                raise GatewayError(503, "gateway is not started (lifespan not run)")
            if grant is not None and grant.budgets and self._budgets is not None:
                status, backend = await self._forward_charged(
                    scope, receive, send, incoming, group, grant
                )
            else:
                status, backend = await self._forwarder.forward(
                    scope, receive, send, incoming, group
                )
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

    async def _forward_charged(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        incoming: Incoming,
        group: str,
        grant: KeyGrant,
    ) -> tuple[int, str]:
        """Forward, charging the key's budgets what the backend says it charged.

        Charged when the backend's response head arrives, before it is passed on: a client
        that saw the answer is already counted in its next request's budget check.
        """
        assert self._forwarder is not None and self._budgets is not None
        budgets = self._budgets

        async def send_charging(message: Message) -> None:
            if message["type"] == "http.response.start":
                for name, value in message.get("headers", ()):
                    if name == _CREDITS:
                        await budgets.charge(grant.budgets, charged_credits(value))
            await send(message)

        return await self._forwarder.forward(scope, receive, send_charging, incoming, group)

    async def _admit(self, incoming: Incoming) -> None:
        """Auth, rate limit and budgets for a request answered elsewhere (gateway.openai_compat)."""
        await self._grant(incoming, incoming.path)

    async def _grant(self, incoming: Incoming, path: str) -> KeyGrant | None:
        """API-key check (scopes too) and attribution, the rate limit (per key when
        authenticated, else per client IP), then the key's credit budgets."""
        grant = await self._authenticate(incoming, path) if self._auth else None
        identity = "key:" + grant.key_id if grant is not None else None
        if self._limiter is not None:
            retry = await self._limiter.check(identity or "ip:" + incoming.client_ip)
            if retry is not None:
                raise GatewayError(
                    429,
                    f"rate limit of {self._limiter.per_minute} requests per minute exceeded",
                    headers=((b"retry-after", str(retry).encode()),),
                )
        if grant is not None and grant.budgets and self._budgets is not None:
            try:
                await self._budgets.check(grant.budgets)
            except BudgetExceeded as exc:
                raise GatewayError(
                    429, str(exc), headers=((b"retry-after", str(exc.retry_after_s).encode()),)
                ) from None
        return grant

    async def _authenticate(self, incoming: Incoming, path: str) -> KeyGrant:
        """The grant of the presented key (static list first, then Postgres); 401 or 503."""
        credential = incoming.credential
        grant = None
        if credential is not None:
            static = self.keys.identify(credential)
            if static is not None:
                grant = KeyGrant(key_id=static)
            elif self._key_store is not None:
                grant = await self._stored_grant(credential)
        if grant is None:
            message = "missing API key" if credential is None else "invalid API key"
            raise _unauthorized(f"{message}: {_KEY_HINT}")
        scope = scope_of(path)
        if not grant.allows(scope):
            raise _unauthorized(f"this API key is not allowed to call {scope!r} routes")
        incoming.attribute(grant.user_id, grant.organization_id, grant.key_id)
        return grant

    async def _stored_grant(self, credential: str) -> KeyGrant | None:
        assert self._key_store is not None
        try:
            stored = await self._key_store.lookup(credential)
        except KeyStoreUnavailable:
            self.metrics.key_store_unavailable.inc()
            raise GatewayError(
                503,
                "API keys cannot be checked right now (key store unavailable); retry shortly",
                headers=((b"retry-after", _KEY_STORE_RETRY_S),),
            ) from None
        if stored is None:
            return None
        refusal = stored.refusal(utc_now())
        if refusal is not None:
            raise _unauthorized(f"this API key is {refusal}: {_KEY_HINT}")
        return stored.grant

    async def _admin(self, scope: Scope, send: Send, incoming: Incoming) -> int:
        """The admin routes (``/gateway/...``; an admin key got here): usage read-back."""
        if scope["path"] != "/gateway/usage" or self._key_store is None:
            raise GatewayError(404, f"no route {scope['path']} (usage needs database keys)")
        if scope["method"] != "GET":
            raise GatewayError(405, "Method not allowed", headers=((b"allow", b"GET"),))
        query_string = scope.get("query_string", b"").decode("latin-1")
        try:
            query = UsageQuery.parse(dict(parse_qsl(query_string)))
            rows = await usage_rows(self._key_store.pool, query)
        except UsageQueryError as exc:
            raise GatewayError(400, str(exc)) from None
        except (OSError, TimeoutError, KeyStoreUnavailable, asyncpg.PostgresError) as exc:
            raise GatewayError(503, f"usage store unavailable: {type(exc).__name__}") from None
        body = {
            "since": query.since.isoformat(),
            "until": query.until.isoformat(),
            "usage": [row.as_json() for row in rows],
        }
        await send_json(send, 200, body, self._own_headers(incoming))
        return 200

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


def _unauthorized(message: str) -> GatewayError:
    return GatewayError(401, message, headers=((b"www-authenticate", b"Bearer"),))


def create_app(
    settings: GatewaySettings | None = None, transport: httpx.AsyncBaseTransport | None = None
) -> GatewayApp:
    """Build the gateway; fails here (not on first request) when the backend is unknown."""
    return GatewayApp(settings or GatewaySettings(), transport)
