"""API keys in Postgres: attribution, scopes, revocation, expiry, budgets, usage, outages.

Real Postgres and Redis from the session fixtures; the backend is the echo upstream, which
shows the headers the gateway sent and answers the X-Credits-Charged it is asked to.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import redis

from gateway import cli
from gateway.auth import key_id
from gateway.keys import KeyStore, KeyStoreUnavailable, StoredKey
from tests.gateway.conftest import make_settings, run_gateway
from tests.gateway.upstreams import ThreadServer

PATH = "/api/v1/rag/stats"


class Keys:
    """Creates keys through the CLI, as an operator would."""

    def __init__(self, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.database_url = database_url
        self.capsys = capsys
        self.org = f"org-{uuid.uuid4().hex[:8]}"

    def run(self, *argv: str) -> str:
        self.capsys.readouterr()
        assert cli.main(list(argv)) == 0
        return self.capsys.readouterr().out

    def create(self, *extra: str, user: str = "user-1", org: str | None = None) -> tuple[str, str]:
        out = self.run(
            "keys", "create", "--name", "test", "--user", user, "--org", org or self.org, *extra
        )
        found = re.search(r"^id\s+(\S+)\n^key\s+(\S+)$", out, re.MULTILINE)
        assert found, out
        return found[1], found[2]


@pytest.fixture
def keys(
    migrated_pg_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Keys:
    monkeypatch.setenv("DATABASE_URL", migrated_pg_url)
    return Keys(migrated_pg_url, capsys)


def db_settings(upstream: ThreadServer, database_url: str, redis_url: str, **extra: Any) -> Any:
    values: dict[str, Any] = {
        "database_keys": True,
        "database_url": database_url,
        "redis_url": redis_url,
        "gateway_secret": "gw-secret",
        "key_cache_ttl_s": 0,
        # generous: on a loaded machine a 0.25 s Redis call can time out, and the budget
        # would then fail open (the behaviour tested separately, with Redis really down)
        "budget_redis_timeout_s": 5,
        "key_lookup_timeout_s": 5,
    }
    return make_settings({"fast": upstream.url}, "fast", **(values | extra))


def test_a_key_attributes_its_requests_and_forged_headers_are_dropped(
    fast: ThreadServer, keys: Keys, migrated_pg_url: str, redis_url: str
) -> None:
    kid, key = keys.create(user="alice")
    with run_gateway(db_settings(fast, migrated_pg_url, redis_url)) as running:
        response = running.client.get(
            PATH,
            headers={
                "Authorization": f"Bearer {key}",
                "X-User-ID": "mallory",
                "X-Organization-ID": "evil-corp",
                "X-API-Key-ID": "not-mine",
                "X-Gateway-Secret": "guessed",
            },
        )
    assert response.status_code == 200
    seen = response.json()["headers"]
    assert (seen["x-user-id"], seen["x-organization-id"], seen["x-api-key-id"]) == (
        "alice",
        keys.org,
        kid,
    )
    assert seen["x-gateway-secret"] == "gw-secret"
    assert "authorization" not in seen
    assert key not in str(seen)


def test_unknown_key_is_401_and_stored_keys_are_hashed(
    fast: ThreadServer, keys: Keys, migrated_pg_url: str, redis_url: str
) -> None:
    kid, key = keys.create()
    with run_gateway(db_settings(fast, migrated_pg_url, redis_url)) as running:
        wrong = running.client.get(PATH, headers={"X-API-Key": key + "x"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "unauthorized"
    with psycopg.connect(migrated_pg_url) as conn:
        row = conn.execute(
            "SELECT key_hash, prefix FROM ml_api_keys WHERE id = %s", (kid,)
        ).fetchone()
    assert row is not None
    assert key not in row
    assert key.startswith(row[1])
    assert len(row[1]) == 12


def test_scopes_limit_the_route_groups(
    fast: ThreadServer, keys: Keys, migrated_pg_url: str, redis_url: str
) -> None:
    _, key = keys.create("--scopes", "rag")
    with run_gateway(db_settings(fast, migrated_pg_url, redis_url)) as running:
        allowed = running.client.get(PATH, headers={"X-API-Key": key})
        refused = running.client.post(
            "/api/v1/embeddings/generate", json={"text": "x"}, headers={"X-API-Key": key}
        )
        usage = running.client.get("/gateway/usage", headers={"X-API-Key": key})
    assert allowed.status_code == 200
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == (
        "this API key is not allowed to call 'embeddings' routes"
    )
    assert usage.status_code == 401
    assert "'admin'" in usage.json()["error"]["message"]


def test_a_revoked_key_is_refused_once_its_cache_entry_expires(
    fast: ThreadServer, keys: Keys, migrated_pg_url: str, redis_url: str
) -> None:
    kid, key = keys.create()
    cached = db_settings(fast, migrated_pg_url, redis_url, key_cache_ttl_s=3600)
    with (
        run_gateway(db_settings(fast, migrated_pg_url, redis_url)) as uncached_gw,
        run_gateway(cached) as cached_gw,
    ):
        before = [
            gw.client.get(PATH, headers={"X-API-Key": key}) for gw in (uncached_gw, cached_gw)
        ]
        keys.run("keys", "revoke", kid)
        after = [gw.client.get(PATH, headers={"X-API-Key": key}) for gw in (uncached_gw, cached_gw)]
    assert [r.status_code for r in before] == [200, 200]
    # TTL 0: refused at once; TTL of an hour: the cached grant still answers
    assert [r.status_code for r in after] == [401, 200]
    assert after[0].json()["error"]["message"].startswith("this API key is revoked")


def test_an_expired_key_is_refused(
    fast: ThreadServer, keys: Keys, migrated_pg_url: str, redis_url: str
) -> None:
    kid, key = keys.create("--expires-in-days", "1")
    with psycopg.connect(migrated_pg_url) as conn:
        conn.execute(
            "UPDATE ml_api_keys SET expires_at = now() - interval '1 second' WHERE id = %s", (kid,)
        )
    with run_gateway(db_settings(fast, migrated_pg_url, redis_url)) as running:
        response = running.client.get(PATH, headers={"X-API-Key": key})
    assert response.status_code == 401
    assert response.json()["error"]["message"].startswith("this API key is expired")


def test_rotation_replaces_the_secret_and_keeps_the_id(
    fast: ThreadServer, keys: Keys, migrated_pg_url: str, redis_url: str
) -> None:
    kid, old = keys.create()
    out = keys.run("keys", "rotate", kid)
    new = re.search(r"^key\s+(\S+)$", out, re.MULTILINE)
    assert new is not None
    with run_gateway(db_settings(fast, migrated_pg_url, redis_url)) as running:
        old_answer = running.client.get(PATH, headers={"X-API-Key": old})
        new_answer = running.client.get(PATH, headers={"X-API-Key": new[1]})
    assert old_answer.status_code == 401
    assert new_answer.status_code == 200
    assert new_answer.json()["headers"]["x-api-key-id"] == kid


def test_the_key_list_never_shows_a_key(keys: Keys) -> None:
    kid, key = keys.create()
    listed = keys.run("keys", "list", "--org", keys.org, "--json")
    assert kid in listed
    assert key not in listed
    assert key[12:] not in listed  # not even the secret part


@pytest.fixture
def silent_postgres() -> Iterator[str]:
    """A port that accepts TCP connections and never answers: a frozen database."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        yield f"postgresql://u:p@127.0.0.1:{port}/db"


@pytest.mark.parametrize("database", ["refused", "silent"])
def test_a_database_outage_is_a_503_and_static_keys_still_work(
    fast: ThreadServer, redis_url: str, silent_postgres: str, database: str
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        refused = f"postgresql://u:p@127.0.0.1:{closed.getsockname()[1]}/db"
    url = refused if database == "refused" else silent_postgres
    settings = db_settings(fast, url, redis_url, api_keys="static-one", key_lookup_timeout_s=0.3)
    with run_gateway(settings) as running:
        stored = running.client.get(PATH, headers={"X-API-Key": "mlk_00000000_whatever"})
        static = running.client.get(PATH, headers={"X-API-Key": "static-one"})
        metrics = running.client.get("/metrics").text
    assert stored.status_code == 503
    assert stored.json()["error"]["code"] == "service_unavailable"
    assert stored.headers["retry-after"] == "5"
    assert static.status_code == 200
    assert static.json()["headers"]["x-api-key-id"] == key_id("static-one")
    assert "gateway_key_store_unavailable_total 1.0" in metrics


def test_an_organisation_budget_is_spent_then_429_until_the_period_ends(
    fast: ThreadServer, keys: Keys, migrated_pg_url: str, redis_url: str
) -> None:
    _, key_a = keys.create()
    kid_b, key_b = keys.create()  # same organisation: one budget for both
    keys.run("budget", "set", "--org", keys.org, "--credits", "10", "--period", "day")
    with run_gateway(db_settings(fast, migrated_pg_url, redis_url)) as running:
        spent = [
            running.client.get(PATH + "?credits=4", headers={"X-API-Key": k}).status_code
            for k in (key_a, key_b, key_a)  # 4 + 4 + 4: the third passes (8 < 10), then over
        ]
        asked_at = datetime.now(UTC)  # Retry-After counts from the refusal, not from the asserts
        refused = running.client.get(PATH + "?credits=4", headers={"X-API-Key": key_b})
    assert spent == [200, 200, 200]
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["message"].startswith(
        f"credit budget of 10 per day for organization {keys.org!r} is used up (12 spent)"
    )
    tomorrow = asked_at.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    left = (tomorrow - asked_at).total_seconds()
    assert 0 < int(refused.headers["retry-after"]) <= left + 1
    assert kid_b  # the other key of the organisation is refused too (above)


def test_a_key_budget_is_reconciled_from_postgres(
    fast: ThreadServer, keys: Keys, migrated_pg_url: str, redis_url: str
) -> None:
    kid, key = keys.create()
    keys.run("budget", "set", "--key", kid, "--credits", "100", "--period", "month")
    with psycopg.connect(migrated_pg_url) as conn:  # what the backends recorded for the key
        conn.execute(
            "INSERT INTO ml_service_requests (service_name, endpoint, method, status_code,"
            " duration_ms, request_id, credits_charged, api_key_id)"
            " VALUES ('fastapi', '/api/v1/rag/stats', 'GET', 200, 1, 'r', 100, %s)",
            (kid,),
        )
    with run_gateway(db_settings(fast, migrated_pg_url, redis_url)) as running:
        # start-up reconciliation runs in the background; it is done once the counter is set
        counter = f"gw:budget:key:{kid}:{datetime.now(UTC):%Y-%m}-01"
        client = redis.Redis.from_url(redis_url)
        for _ in range(200):
            if client.get(counter) is not None:
                break
            running.client.get("/health")
        refused = running.client.get(PATH, headers={"X-API-Key": key})
    assert client.get(counter) == b"100"
    assert refused.status_code == 429
    assert "for API key is used up (100 spent)" in refused.json()["error"]["message"]


def test_budgets_fail_open_while_redis_is_down(
    fast: ThreadServer, keys: Keys, migrated_pg_url: str
) -> None:
    _, key = keys.create()
    keys.run("budget", "set", "--org", keys.org, "--credits", "1", "--period", "day")
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_redis = f"redis://127.0.0.1:{closed.getsockname()[1]}/0"
    with run_gateway(db_settings(fast, migrated_pg_url, dead_redis)) as running:
        statuses = [
            running.client.get(PATH + "?credits=5", headers={"X-API-Key": key}).status_code
            for _ in range(3)
        ]
        metrics = running.client.get("/metrics").text
    assert statuses == [200, 200, 200]
    assert re.search(r"^gateway_budget_fail_open_total [1-9]", metrics, re.MULTILINE)


def test_usage_read_back_for_an_admin_key(
    fast: ThreadServer, keys: Keys, migrated_pg_url: str, redis_url: str
) -> None:
    _, admin = keys.create("--scopes", "admin")
    kid, _ = keys.create()
    today = datetime.now(UTC).date().isoformat()
    with psycopg.connect(migrated_pg_url) as conn:
        for endpoint, status, credits in [
            ("/api/v1/rag/stats", 200, 3),
            ("/api/v1/rag/search", 500, 0),
            ("/api/v1/embeddings/generate", 200, 7),
        ]:
            conn.execute(
                "INSERT INTO ml_service_requests (service_name, endpoint, method, status_code,"
                " duration_ms, request_id, credits_charged, api_key_id, organization_id)"
                " VALUES ('fastapi', %s, 'POST', %s, 1, 'r', %s, %s, %s)",
                (endpoint, status, credits, kid, keys.org),
            )
    with run_gateway(db_settings(fast, migrated_pg_url, redis_url)) as running:
        usage = running.client.get(
            f"/gateway/usage?organization_id={keys.org}", headers={"X-API-Key": admin}
        )
        bad = running.client.get("/gateway/usage?since=yesterday", headers={"X-API-Key": admin})
    assert usage.status_code == 200
    assert usage.json()["usage"] == [
        {"api_key_id": kid, "organization_id": keys.org, "day": today, "category": category,
         "requests": requests, "errors": errors, "credits": credits}
        for category, requests, errors, credits in [("embeddings", 1, 0, 7), ("rag", 2, 1, 3)]
    ]  # fmt: skip
    assert bad.status_code == 400
    assert "since must be a date" in bad.json()["error"]["message"]
    printed = keys.run("usage", "--org", keys.org, "--json")
    assert '"usage"' in printed
    assert printed.count(kid) == 2


def test_concurrent_lookups_of_one_key_share_one_query() -> None:
    """Counted at a silent Postgres: each query needs a connection of its own."""
    accepted: list[socket.socket] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.settimeout(0.1)
        url = f"postgresql://u:p@127.0.0.1:{listener.getsockname()[1]}/db"

        async def lookups() -> list[BaseException | StoredKey | None]:
            store = KeyStore(url, pool_size=4, timeout_s=0.5, cache_ttl_s=5, cache_size=10)
            await store.start()
            try:
                credentials = ["mlk_one"] * 10 + ["mlk_two"] * 10
                return await asyncio.gather(
                    *(store.lookup(c) for c in credentials), return_exceptions=True
                )
            finally:
                with contextlib.suppress(Exception):
                    await store.aclose()

        done = threading.Event()

        def accept() -> None:
            while not done.is_set():
                with contextlib.suppress(TimeoutError):
                    accepted.append(listener.accept()[0])

        thread = threading.Thread(target=accept)
        thread.start()
        try:
            results = asyncio.run(lookups())
        finally:
            done.set()
            thread.join()
            for conn in accepted:
                conn.close()
    assert all(isinstance(r, KeyStoreUnavailable) for r in results)
    assert len(accepted) == 2  # one per key, not one per request
