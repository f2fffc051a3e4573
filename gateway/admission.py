"""Who may pass: API keys (static and in Postgres), scopes, rate limits, credit budgets.

``Admission.admit`` runs before a request is forwarded: it authenticates the key, checks
its scope, adds who called to the forwarded headers (``Incoming.attribute``), applies the
rate limit and checks the key's budgets. ``Admission.charging`` wraps ``send`` to charge
those budgets what the backend says it charged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.types import Message, Send

from gateway.auth import ApiKeys
from gateway.budgets import BudgetExceeded, Budgets, charged_credits
from gateway.errors import GatewayError
from gateway.headers import Incoming
from gateway.keys import KeyGrant, KeyStore, KeyStoreUnavailable, scope_of, utc_now
from gateway.metrics import GatewayMetrics
from gateway.rate_limit import RateLimiter
from gateway.settings import GatewayConfigError, GatewaySettings
from shared_schemas.breaker import CircuitBreaker
from shared_schemas.request_meta import CREDITS_HEADER

log = logging.getLogger("gateway.admission")

_CREDITS = CREDITS_HEADER.encode()
_KEY_HINT = "send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
# Seconds a client should wait after a 503 from a key lookup (Postgres unreachable).
_KEY_STORE_RETRY_S = b"5"


class Admission:
    """The gateway's admission policy; ``start``/``aclose`` own its Redis and Postgres clients."""

    def __init__(self, settings: GatewaySettings, metrics: GatewayMetrics) -> None:
        if settings.rate_limit_per_minute and not settings.redis_url:
            raise GatewayConfigError("GATEWAY_RATE_LIMIT_PER_MINUTE is set but REDIS_URL is empty")
        if settings.database_keys and not (settings.database_url and settings.redis_url):
            raise GatewayConfigError(
                "GATEWAY_DATABASE_KEYS needs DATABASE_URL (the keys) and REDIS_URL (budgets)"
            )
        self.settings = settings
        self.metrics = metrics
        self.keys = ApiKeys(settings.api_key_list)
        self.auth = self.keys.enabled or settings.database_keys
        self.enabled = self.auth or bool(settings.rate_limit_per_minute)
        self.key_store: KeyStore | None = None
        self._limiter: RateLimiter | None = None
        self._budgets: Budgets | None = None
        self._reconciling: asyncio.Task[None] | None = None
        self.redis_breaker: CircuitBreaker | None = None

    async def start(self) -> None:
        settings = self.settings
        # One breaker for the one Redis: once the rate limiter or the budgets found it
        # dead, neither waits for it again until GATEWAY_REDIS_RETRY_S has passed.
        self.redis_breaker = redis_breaker = CircuitBreaker(settings.redis_retry_s)
        if settings.rate_limit_per_minute and settings.redis_url:
            self._limiter = RateLimiter(
                settings.redis_url,
                settings.rate_limit_per_minute,
                self.metrics,
                redis_breaker,
                settings.rate_limit_redis_timeout_s,
            )
        if settings.database_keys and settings.database_url and settings.redis_url:
            self.key_store = KeyStore(
                settings.database_url,
                pool_size=settings.key_pool_size,
                timeout_s=settings.key_lookup_timeout_s,
                cache_ttl_s=settings.key_cache_ttl_s,
                cache_size=settings.key_cache_size,
            )
            await self.key_store.start()
            self._budgets = Budgets(
                settings.redis_url, self.metrics, redis_breaker, settings.budget_redis_timeout_s
            )
            self._reconciling = asyncio.create_task(self._reconcile_budgets())

    async def aclose(self) -> None:
        if self._reconciling is not None:
            self._reconciling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconciling
        for client in (self._limiter, self._budgets, self.key_store):
            if client is not None:
                await client.aclose()
        self._limiter = self._budgets = self.key_store = self._reconciling = None

    async def _reconcile_budgets(self) -> None:
        """At start-up, then every GATEWAY_BUDGET_RECONCILE_S: Redis counters from Postgres."""
        assert self._budgets is not None and self.key_store is not None
        while True:
            try:
                raised = await self._budgets.reconcile(self.key_store.pool)
                if raised:
                    log.info("budgets: %d counter(s) raised to what Postgres recorded", raised)
            except Exception as exc:  # Postgres or Redis away: try again next period
                log.warning("budget reconciliation failed: %s", type(exc).__name__)
            await asyncio.sleep(self.settings.budget_reconcile_s)

    async def admit(self, incoming: Incoming, path: str) -> KeyGrant | None:
        """API-key check (scopes too) and attribution, the rate limit (per key when
        authenticated, else per client IP), then the key's credit budgets."""
        grant = await self._authenticate(incoming, path) if self.auth else None
        if self._limiter is not None:
            identity = "key:" + grant.key_id if grant is not None else "ip:" + incoming.client_ip
            retry = await self._limiter.check(identity)
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

    def charging(self, send: Send, grant: KeyGrant | None) -> Send:
        """``send``, charging the grant's budgets the backend's X-Credits-Charged.

        Charged when the response head arrives, before it is passed on: a client that saw
        the answer is already counted in its next request's budget check.
        """
        budgets = self._budgets
        if grant is None or not grant.budgets or budgets is None:
            return send
        spent_from = grant.budgets

        async def send_charging(message: Message) -> None:
            if message["type"] == "http.response.start":
                for name, value in message.get("headers", ()):
                    if name == _CREDITS:
                        await budgets.charge(spent_from, charged_credits(value))
            await send(message)

        return send_charging

    async def _authenticate(self, incoming: Incoming, path: str) -> KeyGrant:
        """The grant of the presented key (static list first, then Postgres); 401 or 503."""
        credential = incoming.credential
        grant = None
        if credential is not None:
            static = self.keys.identify(credential)
            if static is not None:
                grant = KeyGrant(key_id=static)
            elif self.key_store is not None:
                grant = await self._stored_grant(self.key_store, credential)
        if grant is None:
            message = "missing API key" if credential is None else "invalid API key"
            raise _unauthorized(f"{message}: {_KEY_HINT}")
        scope = scope_of(path)
        if not grant.allows(scope):
            raise _unauthorized(f"this API key is not allowed to call {scope!r} routes")
        incoming.attribute(grant.user_id, grant.organization_id, grant.key_id)
        return grant

    async def _stored_grant(self, store: KeyStore, credential: str) -> KeyGrant | None:
        try:
            stored = await store.lookup(credential)
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


def _unauthorized(message: str) -> GatewayError:
    return GatewayError(401, message, headers=((b"www-authenticate", b"Bearer"),))
