"""Both backends charge the same credits for the same traffic, and the tables add up.

Real servers on the session's Postgres and Redis. The client's own X-Credits-Charged
is forged on every request and must change nothing. Each backend gets its own texts,
so that the shared response cache cannot turn one backend's misses into the other's hits.
"""

from __future__ import annotations

import time
import uuid

import httpx
import psycopg

from e2e.conftest import Backends

FORGED = {"X-Credits-Charged": "999"}
# The gateway secret (fixed interface): backends honour attribution only with it, once set.
GATEWAY_SECRET_HEADER = "x-gateway-secret"


def _headers(backends: Backends, user: str) -> dict[str, str]:
    headers = {**FORGED, "X-User-ID": user}
    secret = backends.env.get("ML_SERVICE_GATEWAY_SECRET")
    if secret:
        headers[GATEWAY_SECRET_HEADER] = secret
    return headers


def _traffic(client: httpx.Client, tag: str) -> list[tuple[str, int, str | None, int]]:
    """(what, status, X-Cache, X-Credits-Charged) of a fixed run of requests."""
    texts = [f"{tag}: metered text {i}" for i in range(11)]
    calls = [
        ("batch of 11", "POST", "/api/v1/embeddings/batch", {"texts": texts}),
        ("same batch", "POST", "/api/v1/embeddings/batch", {"texts": texts}),
        ("one text", "POST", "/api/v1/embeddings/generate", {"text": f"{tag} alone"}),
        ("sentiment", "POST", "/api/v1/analysis/sentiment", {"text": f"{tag} is lovely"}),
        ("scale", "GET", "/api/v1/complexity/scale", None),
        ("invalid", "POST", "/api/v1/embeddings/batch", {"texts": []}),
        ("missing", "POST", "/api/v1/rag/search", {"query": "q", "collection": f"none-{tag}"}),
    ]
    seen = []
    for what, method, path, body in calls:
        response = client.request(method, path, json=body)
        credits = response.headers["x-credits-charged"]
        seen.append((what, response.status_code, response.headers.get("x-cache"), int(credits)))
    return seen


EXPECTED = [
    ("batch of 11", 200, "miss", 6),  # 5 + 10 x 0.1
    ("same batch", 200, "hit", 1),  # 6 x 0.1, rounded up
    ("one text", 200, "miss", 2),
    ("sentiment", 200, "miss", 3),
    ("scale", 200, None, 1),
    ("invalid", 422, None, 0),
    ("missing", 404, None, 0),
]


def test_both_backends_charge_the_same_and_usage_adds_up(
    backends: Backends, migrated_pg_url: str
) -> None:
    run = uuid.uuid4().hex[:8]
    users = {name: f"meter-{name}-{run}" for name in backends.services}
    charged = {}
    for name, service in backends.services.items():
        with httpx.Client(
            base_url=service.base_url, headers=_headers(backends, users[name]), timeout=60
        ) as client:
            charged[name] = _traffic(client, f"{name}-{run}")
    assert charged["fastapi"] == charged["django"] == EXPECTED

    total = sum(credits for *_, credits in EXPECTED)
    with psycopg.connect(migrated_pg_url) as conn:
        deadline = time.monotonic() + 20
        while True:  # rows are written in batches, off the response path
            rows = conn.execute(
                "SELECT user_id, count(*), sum(credits_charged), max(credits_charged) "
                "FROM ml_service_requests WHERE user_id = ANY(%s) GROUP BY user_id",
                (list(users.values()),),
            ).fetchall()
            if sorted(r[1] for r in rows) == [len(EXPECTED)] * 2 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert {r[0]: (r[1], r[2]) for r in rows} == {
            user: (len(EXPECTED), total) for user in users.values()
        }
        assert max(r[3] for r in rows) < 999  # the forged header counted nowhere
        usage = conn.execute(
            "SELECT user_id, sum(total_credits), sum(total_requests) FROM ml_service_usage "
            "WHERE user_id = ANY(%s) GROUP BY user_id",
            (list(users.values()),),
        ).fetchall()
        requests = conn.execute(
            "SELECT user_id, sum(credits_charged), count(*) FROM ml_service_requests "
            "WHERE user_id = ANY(%s) GROUP BY user_id",
            (list(users.values()),),
        ).fetchall()
    assert sorted(usage) == sorted(requests)
