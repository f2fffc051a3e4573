"""Switching ML_SERVICE_BACKEND changes nothing for clients and loses no data."""

from __future__ import annotations

import time

import httpx
import psycopg

from e2e.conftest import DATABASE_KEYS_ENV, Backends, GatewayStarter, create_key


def _post(client: httpx.Client, path: str, body: object) -> httpx.Response:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    return response


def test_switching_backends_keeps_collections_logs_and_cache(
    backends: Backends, start_gateway: GatewayStarter, migrated_pg_url: str
) -> None:
    run = time.time_ns()
    collection = f"switch-{run}"
    user = f"switch-user-{run}"
    # the gateway takes the user from the key (a client's X-User-ID is dropped)
    _, key = create_key(backends, f"switch-org-{run}", user)
    auth = {"Authorization": f"Bearer {key}"}
    sentiment = {"text": f"Run {run}: the switch went wonderfully well."}
    question = {"query": "Which animal purrs?", "collection": collection, "top_k": 1}
    documents = [
        {"id": "cat", "text": "Cats are small pets that purr when they are content."},
        {"id": "rocket", "text": "Rockets burn fuel to lift satellites into orbit."},
        {"id": "bread", "text": "Bread is baked from flour, water, salt and yeast."},
    ]

    with (
        start_gateway("fastapi", DATABASE_KEYS_ENV) as gateway,
        httpx.Client(base_url=gateway.base_url, headers=auth, timeout=60) as client,
    ):
        indexed = _post(
            client, "/api/v1/rag/index", {"collection": collection, "documents": documents}
        )
        assert indexed.headers["x-ml-backend"] == "fastapi"
        first = _post(client, "/api/v1/analysis/sentiment", sentiment)
        assert first.headers["x-cache"] == "miss"

    for backend in ("django", "fastapi"):  # switch, then back again
        with (
            start_gateway(backend, DATABASE_KEYS_ENV) as gateway,
            httpx.Client(base_url=gateway.base_url, headers=auth, timeout=60) as client,
        ):
            found = _post(client, "/api/v1/rag/search", question)
            assert found.headers["x-ml-backend"] == backend
            assert [hit["document_id"] for hit in found.json()["results"]] == ["cat"]
            cached = _post(client, "/api/v1/analysis/sentiment", sentiment)
            assert cached.headers["x-cache"] == "hit", backend
            assert cached.json() == first.json()

    deadline = time.monotonic() + 10
    with psycopg.connect(migrated_pg_url) as conn:
        while True:
            logged = conn.execute(
                "SELECT service_name, count(*) FROM ml_service_requests WHERE user_id = %s"
                " GROUP BY service_name ORDER BY service_name",
                (user,),
            ).fetchall()
            if dict(logged) == {"django": 2, "fastapi": 4} or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        usage = conn.execute(
            "SELECT service_name, sum(total_requests) FROM ml_service_usage WHERE user_id = %s"
            " GROUP BY service_name ORDER BY service_name",
            (user,),
        ).fetchall()
    assert dict(logged) == {"django": 2, "fastapi": 4}
    assert {name: int(total) for name, total in usage} == {"django": 2, "fastapi": 4}
