"""API keys in Postgres (``ml_api_keys``): the key format, what a key grants, cached lookups.

A key is ``mlk_<8 hex>_<43 base64url chars>``: 256 random bits after a public prefix that
lists and logs may show. Only the SHA-256 of the whole key is stored; the gateway hashes
what a client presents and looks the digest up. Lookups are cached per process for
``GATEWAY_KEY_CACHE_TTL_S`` (unknown keys too), so a revocation takes effect within that
time on every replica.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from shared_schemas.operations import API_GROUPS, group_of_path

log = logging.getLogger("gateway.keys")

KEY_PREFIX = "mlk_"
ADMIN_SCOPE = "admin"
SCOPES = (*API_GROUPS, ADMIN_SCOPE)
# The OpenAI-compatible routes (gateway.openai_compat) call these route groups.
_OPENAI_SCOPES = {
    "/v1/embeddings": "embeddings",
    "/v1/chat/completions": "analysis",
    "/v1/audio/transcriptions": "transcription",
}
ADMIN_PATH_PREFIX = "/gateway/"


def new_key() -> str:
    """A fresh key: shown once at creation, never stored."""
    return f"{KEY_PREFIX}{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}"


def key_digest(key: str) -> str:
    """What ``ml_api_keys.key_hash`` holds: hex SHA-256 of the whole key.

    A plain hash, not a password hash: the key carries 256 random bits, so there is
    nothing to brute-force, and a lookup costs one SHA-256 (about 1 us) per request.
    """
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def public_prefix(key: str) -> str:
    """The part of a key that may be shown (``mlk_1a2b3c4d``)."""
    return key[: len(KEY_PREFIX) + 8]


def scope_of(path: str) -> str | None:
    """The scope a path needs: its route group, "admin", or None (any valid key)."""
    if path.startswith(ADMIN_PATH_PREFIX):
        return ADMIN_SCOPE
    return group_of_path(path) or _OPENAI_SCOPES.get(path.rstrip("/"))


@dataclass(frozen=True, slots=True)
class Budget:
    """A credit budget: ``credits`` per ``period`` (day or month, UTC) for one subject."""

    kind: str  # "key" or "organization"
    subject: str
    period: str
    credits: int


@dataclass(frozen=True, slots=True)
class KeyGrant:
    """Who a valid key speaks for and what it may call."""

    key_id: str
    user_id: str | None = None
    organization_id: str | None = None
    scopes: frozenset[str] | None = None  # None: every route group (a static key)
    budgets: tuple[Budget, ...] = ()

    def allows(self, scope: str | None) -> bool:
        if scope is None:
            return True
        if self.scopes is None:
            return scope != ADMIN_SCOPE  # static keys are never admins
        return scope in self.scopes


@dataclass(frozen=True, slots=True)
class StoredKey:
    """An ``ml_api_keys`` row as the gateway caches it (expiry is judged at use time)."""

    grant: KeyGrant
    expires_at: datetime | None
    revoked_at: datetime | None

    def refusal(self, now: datetime) -> str | None:
        """Why the key is refused now ("revoked", "expired"), or None when it is valid."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return None


class KeyStoreUnavailable(Exception):
    """Postgres did not answer a key lookup in time."""


LOOKUP_SQL = """
SELECT k.id::text AS id, k.user_id, k.organization_id, k.scopes, k.expires_at, k.revoked_at,
       kb.period AS key_period, kb.credits AS key_credits,
       ob.period AS org_period, ob.credits AS org_credits
FROM ml_api_keys k
LEFT JOIN ml_credit_budgets kb ON kb.subject_kind = 'key' AND kb.subject_id = k.id::text
LEFT JOIN ml_credit_budgets ob
       ON ob.subject_kind = 'organization' AND ob.subject_id = k.organization_id
WHERE k.key_hash = $1
"""


def stored_key(row: Any) -> StoredKey:
    """A lookup row (``LOOKUP_SQL``) as a StoredKey."""
    budgets = []
    if row["key_credits"] is not None:
        budgets.append(Budget("key", row["id"], row["key_period"], row["key_credits"]))
    if row["org_credits"] is not None:
        org = row["organization_id"]
        budgets.append(Budget("organization", org, row["org_period"], row["org_credits"]))
    grant = KeyGrant(
        key_id=row["id"],
        user_id=row["user_id"],
        organization_id=row["organization_id"],
        scopes=frozenset(row["scopes"]),
        budgets=tuple(budgets),
    )
    return StoredKey(grant, row["expires_at"], row["revoked_at"])


class KeyStore:
    """Looks keys up in Postgres through a small asyncpg pool, behind a bounded TTL cache.

    A lookup waits at most ``timeout_s`` (pool, connect and query together); then it raises
    KeyStoreUnavailable and the gateway answers 503, so a dead database never holds a
    request longer than that.
    """

    def __init__(
        self,
        database_url: str,
        *,
        pool_size: int,
        timeout_s: float,
        cache_ttl_s: float,
        cache_size: int,
    ) -> None:
        self._url = database_url
        self._pool_size = pool_size
        self._timeout_s = timeout_s
        self._ttl_s = cache_ttl_s
        self._cache_size = cache_size
        self._cache: OrderedDict[str, tuple[float, StoredKey | None]] = OrderedDict()
        self._pending: dict[str, asyncio.Future[StoredKey | None]] = {}
        self._pool: asyncpg.Pool | None = None

    async def start(self) -> None:
        # min_size=0: no connection at start-up, so the gateway starts while Postgres is down
        self._pool = await asyncpg.create_pool(
            self._url,
            min_size=0,
            max_size=self._pool_size,
            timeout=self._timeout_s,
            command_timeout=self._timeout_s,
        )

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise KeyStoreUnavailable("key store not started")
        return self._pool

    async def lookup(self, credential: str) -> StoredKey | None:
        """The stored key for a presented credential (cached), or None when there is none."""
        digest = key_digest(credential)
        cached = self._cache.get(digest)
        if cached is not None and time.monotonic() - cached[0] < self._ttl_s:
            self._cache.move_to_end(digest)
            return cached[1]
        # One query per key at a time: when a busy key's entry expires, the requests that
        # arrive meanwhile wait for that query instead of each taking a pool connection.
        pending = self._pending.get(digest)
        if pending is None:
            pending = self._pending[digest] = asyncio.ensure_future(self._fetch(digest))
            pending.add_done_callback(lambda _: self._pending.pop(digest, None))
        return await asyncio.shield(pending)

    async def _fetch(self, digest: str) -> StoredKey | None:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._timeout_s):
                row = await self.pool.fetchrow(LOOKUP_SQL, digest)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("API key lookup failed: %s", type(exc).__name__)
            raise KeyStoreUnavailable(type(exc).__name__) from None
        found = stored_key(row) if row is not None else None
        self._cache[digest] = (started, found)
        self._cache.move_to_end(digest)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return found


def utc_now() -> datetime:
    return datetime.now(UTC)
