"""Tenants end to end: two organisations' keys through a gateway to a real backend.

Keys are created with the CLI in a subprocess, as an operator would; the gateway looks
them up in the session's Postgres and counts budgets in its Redis; the FastAPI backend
records the rows. Credits are compared with the X-Credits-Charged answers the clients
received (the backend's own figure), so the comparison holds whatever the price table.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

from devinfra.processes import RunningService
from e2e.conftest import DATABASE_KEYS_ENV, Backends, GatewayStarter, create_key, gateway_cli

KEY_CACHE_TTL_S = 1.0
RECONCILE_S = 1.0
FORGED = {
    "X-User-ID": "mallory",
    "X-Organization-ID": "evil-corp",
    "X-API-Key-ID": "forged-key-id",
    "X-Credits-Charged": "999999",
    "X-Gateway-Secret": "guessed-secret",
}
TRAFFIC: list[tuple[str, str, Any]] = [
    ("GET", "/api/v1/complexity/scale", None),
    ("POST", "/api/v1/analysis/keywords", {"text": "solar panels convert sunlight"}),
    ("POST", "/api/v1/complexity/pre-estimate", {"title": "fix typo in readme"}),
    ("POST", "/api/v1/embeddings/generate", {"text": ""}),  # 422
]


@dataclass
class Tenant:
    org: str
    user: str
    key_id: str
    key: str
    sent: int = 0
    credits: int = 0  # the sum of the X-Credits-Charged answers


@dataclass
class Scenario:
    backends: Backends
    gateway: RunningService
    run: str
    tenants: list[Tenant]
    admin_key: str
    keys: list[str] = field(default_factory=list)  # every key created: none may leak
    bodies: list[str] = field(default_factory=list)  # every answer the clients got
    ids: Iterator[int] = field(default_factory=itertools.count)

    def cli(self, *argv: str) -> str:
        return gateway_cli(self.backends, *argv)

    def create_key(self, org: str, user: str, *extra: str) -> tuple[str, str]:
        key_id, key = create_key(self.backends, org, user, *extra)
        self.keys.append(key)
        return key_id, key

    def send(self, key: str, method: str, path: str, body: Any = None) -> httpx.Response:
        headers = {**FORGED, "Authorization": f"Bearer {key}"}
        headers["X-Request-ID"] = f"{self.run}-{next(self.ids)}"
        response = httpx.request(
            method, self.gateway.base_url + path, json=body, headers=headers, timeout=60
        )
        self.bodies.append(response.text)
        return response


@pytest.fixture(scope="module")
def scenario(backends: Backends, start_gateway: GatewayStarter) -> Iterator[Scenario]:
    env = {
        **DATABASE_KEYS_ENV,
        "GATEWAY_KEY_CACHE_TTL_S": str(KEY_CACHE_TTL_S),
        "GATEWAY_BUDGET_RECONCILE_S": str(RECONCILE_S),
    }
    run = f"tenants-{time.time_ns()}"
    with start_gateway("fastapi", env) as gateway:
        scenario = Scenario(backends, gateway, run, [], "")
        for name in ("a", "b"):
            org, user = f"{run}-org-{name}", f"{run}-user-{name}"
            key_id, key = scenario.create_key(org, user)
            scenario.tenants.append(Tenant(org, user, key_id, key))
        scenario.admin_key = scenario.create_key(f"{run}-ops", "ops", "--scopes", "admin")[1]
        yield scenario


def _wait_for_rows(database_url: str, run: str, expected: int) -> None:
    deadline = time.monotonic() + 15  # the backends' writers flush every 0.2 s
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM ml_service_requests WHERE request_id LIKE %s", (run + "%",)
            ).fetchone()
            if row is not None and row[0] >= expected:
                return
            time.sleep(0.2)


def test_usage_per_organisation_matches_the_traffic_and_forgeries_are_ignored(
    scenario: Scenario, migrated_pg_url: str
) -> None:
    a, b = scenario.tenants
    for tenant, rounds in ((a, 3), (b, 2)):  # 12 and 8 requests, 3 and 2 of them 422s
        for method, path, body in TRAFFIC * rounds:
            response = scenario.send(tenant.key, method, path, body)
            assert response.status_code in (200, 422), response.text
            tenant.sent += 1
            tenant.credits += int(response.headers.get("x-credits-charged", 0))
    _wait_for_rows(migrated_pg_url, scenario.run, a.sent + b.sent)
    with psycopg.connect(migrated_pg_url) as conn:
        rows = conn.execute(
            "SELECT organization_id, user_id, api_key_id, count(*), sum(credits_charged),"
            " count(*) FILTER (WHERE status_code = 422)"
            " FROM ml_service_requests WHERE request_id LIKE %s GROUP BY 1, 2, 3 ORDER BY 1",
            (scenario.run + "-%",),
        ).fetchall()
        usage = conn.execute(
            "SELECT organization_id, sum(total_requests), sum(total_credits), sum(error_count)"
            " FROM ml_service_usage WHERE organization_id = ANY(%s) GROUP BY 1 ORDER BY 1",
            ([a.org, b.org],),
        ).fetchall()
    # the key's organisation, user and id; never the forged ones
    assert rows == [(t.org, t.user, t.key_id, t.sent, t.credits, t.sent // 4) for t in (a, b)]
    assert usage == [(t.org, t.sent, t.credits, t.sent // 4) for t in (a, b)]
    assert all(t.credits < 999999 for t in (a, b))

    read_back = httpx.get(
        scenario.gateway.base_url + "/gateway/usage",
        headers={"X-API-Key": scenario.admin_key},
        timeout=30,
    )
    assert read_back.status_code == 200
    totals: dict[str, list[int]] = {}
    for row in read_back.json()["usage"]:
        if row["organization_id"] in (a.org, b.org):
            total = totals.setdefault(row["organization_id"], [0, 0])
            total[0] += row["requests"]
            total[1] += row["credits"]
    assert totals == {t.org: [t.sent, t.credits] for t in (a, b)}


def test_a_revoked_key_gets_401_within_the_cache_ttl(scenario: Scenario) -> None:
    key_id, key = scenario.create_key(scenario.tenants[1].org, "to-revoke")
    assert scenario.send(key, "GET", "/api/v1/complexity/scale").status_code == 200
    scenario.cli("keys", "revoke", key_id)
    revoked_at = time.monotonic()
    statuses = []
    while time.monotonic() - revoked_at < KEY_CACHE_TTL_S + 5:  # slack for a busy machine
        statuses.append(scenario.send(key, "GET", "/api/v1/complexity/scale").status_code)
        if statuses[-1] == 401:
            break
        time.sleep(0.1)
    assert statuses[-1] == 401
    assert set(statuses[:-1]) <= {200}


def test_an_exhausted_budget_gets_429_and_other_organisations_pass(
    scenario: Scenario, migrated_pg_url: str
) -> None:
    a, b = scenario.tenants
    with psycopg.connect(migrated_pg_url) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(credits_charged), 0) FROM ml_service_requests"
            " WHERE organization_id = %s",
            (a.org,),
        ).fetchone()
    assert row is not None
    # What the organisation has already spent today is its whole budget: reconciliation
    # brings the gateway's counter up to it from Postgres, and the next request is refused.
    scenario.cli("budget", "set", "--org", a.org, "--credits", str(row[0]), "--period", "day")
    scenario.cli("budget", "set", "--org", b.org, "--credits", "1000000000", "--period", "day")
    deadline = time.monotonic() + KEY_CACHE_TTL_S + RECONCILE_S + 10
    while True:
        refused = scenario.send(a.key, "GET", "/api/v1/complexity/scale")
        if refused.status_code == 429 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert f"per day for organization {a.org!r} is used up" in refused.json()["error"]["message"]
    assert int(refused.headers["retry-after"]) <= 86_400
    assert scenario.send(b.key, "GET", "/api/v1/complexity/scale").status_code == 200


def _all_stored_text(database_url: str) -> Iterator[str]:
    with psycopg.connect(database_url) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
        for (table,) in tables:
            query = sql.SQL("SELECT t::text FROM {} t").format(sql.Identifier(table))
            for (text,) in conn.execute(query):
                yield text


def test_no_key_appears_in_clear_in_logs_rows_or_answers(
    scenario: Scenario, migrated_pg_url: str
) -> None:
    a = scenario.tenants[0]
    # the key in places a careless client puts it: a body field, a wrong-key attempt, a query
    scenario.send(a.key, "POST", "/api/v1/analysis/keywords", {"text": "x", "api_key": a.key})
    scenario.send(a.key + "x", "GET", "/api/v1/complexity/scale")
    scenario.send(a.key, "GET", f"/api/v1/complexity/scale?key={a.key}")
    _wait_for_rows(migrated_pg_url, scenario.run, 1)
    time.sleep(1)  # the backends' writers flush every 0.2 s
    secrets = [key.split("_", 2)[2] for key in scenario.keys]  # the part after the prefix
    assert len(secrets) >= 4
    logs = "".join(path.read_text(errors="replace") for path in scenario.backends.log_dir.iterdir())
    stored = list(_all_stored_text(migrated_pg_url))
    for secret in secrets:
        assert secret not in logs
        assert not [text for text in stored if secret in text]
        assert not [body for body in scenario.bodies if secret in body]


@pytest.mark.parametrize("backend", ["fastapi", "django"])
@pytest.mark.parametrize("secret", [None, "guessed-secret", "the-real-one"])
def test_a_backend_called_directly_trusts_attribution_only_with_the_secret(
    backends: Backends, migrated_pg_url: str, backend: str, secret: str | None
) -> None:
    request_id = f"direct-{backend}-{time.time_ns()}"
    headers = {"X-User-ID": "u", "X-Organization-ID": "o", "X-API-Key-ID": "k"}
    headers["X-Request-ID"] = request_id
    if secret is not None:
        headers["X-Gateway-Secret"] = (
            backends.env["ML_SERVICE_GATEWAY_SECRET"] if secret == "the-real-one" else secret
        )
    service = backends.services[backend]
    response = httpx.get(service.base_url + "/api/v1/complexity/scale", headers=headers)
    assert response.status_code == 200
    _wait_for_rows(migrated_pg_url, request_id, 1)
    with psycopg.connect(migrated_pg_url) as conn:
        row = conn.execute(
            "SELECT user_id, organization_id, api_key_id FROM ml_service_requests"
            " WHERE request_id = %s",
            (request_id,),
        ).fetchone()
    assert row == (("u", "o", "k") if secret == "the-real-one" else (None, None, None))
