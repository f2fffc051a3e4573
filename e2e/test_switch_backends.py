"""Switching ML_SERVICE_BACKEND changes nothing for clients and loses no data."""

from __future__ import annotations

import itertools
import time

import httpx
import psycopg

from e2e.conftest import GatewayStarter


def _post(client: httpx.Client, path: str, body: object, request_id: str) -> httpx.Response:
    response = client.post(path, json=body, headers={"X-Request-ID": request_id})
    assert response.status_code == 200, response.text
    return response


def test_switching_backends_keeps_collections_logs_and_cache(
    start_gateway: GatewayStarter, migrated_pg_url: str
) -> None:
    run = time.time_ns()
    collection = f"switch-{run}"
    # the gateway drops a client's X-User-ID: this run's rows are found by their request ids
    ids = (f"switch-{run}-{n}" for n in itertools.count())
    sentiment = {"text": f"Run {run}: the switch went wonderfully well."}
    question = {"query": "Which animal purrs?", "collection": collection, "top_k": 1}
    documents = [
        {"id": "cat", "text": "Cats are small pets that purr when they are content."},
        {"id": "rocket", "text": "Rockets burn fuel to lift satellites into orbit."},
        {"id": "bread", "text": "Bread is baked from flour, water, salt and yeast."},
    ]

    with (
        start_gateway("fastapi") as gateway,
        httpx.Client(base_url=gateway.base_url, timeout=60) as client,
    ):
        indexed = _post(
            client,
            "/api/v1/rag/index",
            {"collection": collection, "documents": documents},
            next(ids),
        )
        assert indexed.headers["x-ml-backend"] == "fastapi"
        first = _post(client, "/api/v1/analysis/sentiment", sentiment, next(ids))
        assert first.headers["x-cache"] == "miss"

    for backend in ("django", "fastapi"):  # switch, then back again
        with (
            start_gateway(backend) as gateway,
            httpx.Client(base_url=gateway.base_url, timeout=60) as client,
        ):
            found = _post(client, "/api/v1/rag/search", question, next(ids))
            assert found.headers["x-ml-backend"] == backend
            assert [hit["document_id"] for hit in found.json()["results"]] == ["cat"]
            cached = _post(client, "/api/v1/analysis/sentiment", sentiment, next(ids))
            assert cached.headers["x-cache"] == "hit", backend
            assert cached.json() == first.json()

    deadline = time.monotonic() + 10
    with psycopg.connect(migrated_pg_url) as conn:
        while True:
            logged = conn.execute(
                "SELECT service_name, count(*) FROM ml_service_requests WHERE request_id LIKE %s"
                " GROUP BY service_name ORDER BY service_name",
                (f"switch-{run}-%",),
            ).fetchall()
            if dict(logged) == {"django": 2, "fastapi": 4} or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert dict(logged) == {"django": 2, "fastapi": 4}
