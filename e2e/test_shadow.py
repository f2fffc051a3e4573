"""Shadow mode end to end: FastAPI primary, Django candidate, every operation, real stores."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from devinfra.processes import RunningService, running_service
from e2e.conftest import Backends
from gateway.shadow_report import GATEWAY_ANSWERED
from shared_schemas.comparators import COMPARATORS
from shared_schemas.operations import MULTIPART, OPERATIONS, Operation
from tests.api.examples import first_example

PERTURBED = "complexity_calculate_adjustment:multiplier"
MIRRORED = [op for op in OPERATIONS if not op.writes and op.path not in GATEWAY_ANSWERED]
WRITE_PATHS = [op.path for op in OPERATIONS if op.writes]
# What the operations that write change (collections, their chunks, calibration samples).
STORED_BY_WRITES = ("ml_vector_collections", "ml_vector_chunks", "ml_complexity_samples")
ROUNDS = 2  # each operation twice: the switch verdict then has 2 comparisons per operation


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("shadow-audio") / "hello.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "hello world"], check=True, timeout=30)
    return path.read_bytes()


def _gateway_env(backends: Backends, extra: dict[str, str]) -> dict[str, str]:
    return {
        **backends.env,
        "ML_SERVICE_BACKEND": "fastapi",
        **{
            f"ML_BACKEND_{name.upper()}_URL": svc.base_url
            for name, svc in backends.services.items()
        },
        "GATEWAY_SHADOW_SAMPLE_RATE": "1",
        "GATEWAY_SHADOW_NOISE_RATE": "1",
        "GATEWAY_SHADOW_FLUSH_INTERVAL_S": "0.2",
        # transcriptions hold Django's two workers for seconds: nothing may be dropped here
        "GATEWAY_SHADOW_MAX_INFLIGHT": "256",
        "GATEWAY_SWITCH_MIN_REQUESTS": str(ROUNDS),
        **extra,
    }


@pytest.fixture(scope="module")
def perturbed_django(backends: Backends) -> Iterator[RunningService]:
    """A second Django backend answering one operation with one field changed (test only)."""
    env = {**backends.env, "ML_SERVICE_TEST_PERTURB": PERTURBED}
    with running_service("backends.django_service", env, backends.log_dir) as service:
        yield service


def _send(client: httpx.Client, op: Operation, collection: str, wav: bytes) -> httpx.Response:
    if op.request_model is None:
        return client.request(op.method, op.path)
    body = first_example(op.request_model)
    if "collection" in body:
        body["collection"] = collection
    if op.request_content_type == MULTIPART:
        form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
        form.pop("file", None)
        return client.post(op.path, data=form, files={"file": ("hello.wav", wav, "audio/wav")})
    if op.operation_id == "transcription_transcribe_base64":
        body["audio"] = base64.b64encode(wav).decode()
    return client.post(op.path, json=body)


def _report(client: httpx.Client, candidate: str, wanted: list[str]) -> dict[str, Any]:
    """The shadow report once every wanted operation has ROUNDS stored comparisons."""
    deadline = time.monotonic() + 300
    while True:
        response = client.get("/gateway/shadow/report")
        assert response.status_code == 200, response.text
        operations = response.json()["candidates"].get(candidate, {}).get("operations", {})
        short = [op for op in wanted if operations.get(op, {}).get("requests", 0) < ROUNDS]
        if not short:
            return dict(operations)
        if time.monotonic() > deadline:
            shadow = [m for m in client.get("/metrics").text.splitlines() if "shadow_req" in m]
            raise AssertionError(f"no shadow results for {short}: {shadow}")
        time.sleep(0.5)


def _switch_check(
    env: dict[str, str], candidate: str, *args: str, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "switch-check", "--to", candidate, *args],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout_s,
        check=False,
    )  # fmt: skip


def _failed(report: dict[str, Any]) -> dict[str, Any]:
    """Operations some of whose mirrors failed (no answer: the candidate may have no row)."""
    return {
        op: (seen["errors"], seen["last_error"]) for op, seen in report.items() if seen["errors"]
    }


def _writer_counts(service: RunningService) -> list[str]:
    """The request-log writer's counts on a backend's /metrics: written, refused (dropped),
    overflowed (dropped), pending (accepted, not written yet)."""
    page = httpx.get(service.base_url + "/metrics", timeout=10).text
    return [line for line in page.splitlines() if line.startswith("request_log_")]


def _count(conn: psycopg.Connection[Any], query: str, *params: Any) -> int:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0] or 0)


@pytest.mark.timeout(900)
def test_shadow_traffic_matches_and_never_writes(
    backends: Backends, migrated_pg_url: str, speech: bytes
) -> None:
    run = time.time_ns()
    collection = f"shadow-{run}"
    doomed = f"shadow-doomed-{run}"
    env = _gateway_env(backends, {"ML_SERVICE_SHADOW": "django"})
    with (
        psycopg.connect(migrated_pg_url, autocommit=True) as pg,
        running_service("gateway", env, backends.log_dir) as gateway,
        httpx.Client(base_url=gateway.base_url, timeout=300) as client,
    ):
        started = pg.execute("SELECT now()").fetchone()
        assert started is not None
        usage_before = _count(
            pg, "SELECT sum(total_requests) FROM ml_service_usage WHERE service_name = 'django'"
        )
        # the writes: indexed once, by the primary only
        for name in (collection, doomed):
            for op in OPERATIONS:
                if op.operation_id in ("rag_index", "rag_index_document"):
                    assert _send(client, op, name, speech).status_code == 200
        deleted = client.delete(f"/api/v1/rag/collection/{doomed}")
        assert deleted.status_code == 200, deleted.text
        chunks = "SELECT count(*) FROM ml_vector_chunks WHERE collection = %s"
        indexed = _count(pg, chunks, collection)
        assert indexed > 0

        for _ in range(ROUNDS):
            for op in MIRRORED:
                answer = _send(client, op, collection, speech)
                assert answer.headers["x-ml-backend"] == "fastapi"
                assert answer.status_code < 500 or op.operation_id == "analysis_generate", (
                    op.operation_id, answer.text,
                )  # fmt: skip

        report = _report(client, "django", [op.operation_id for op in MIRRORED])
        metrics = client.get("/metrics").text

        # shadowing changed no data: the primary's chunks are as indexed, the deleted
        # collection stays deleted, and the candidate never saw a write
        assert _count(pg, chunks, collection) == indexed
        assert _count(pg, chunks, doomed) == 0
        collections = "SELECT count(*) FROM ml_vector_collections WHERE name = %s"
        assert _count(pg, collections, doomed) == 0
        rows = (
            "SELECT count(*) FROM ml_service_requests WHERE service_name = 'django'"
            " AND created_at >= %s"
        )
        deadline = time.monotonic() + 60  # the candidate's log rows are written in batches
        logged = [op for op in MIRRORED if op.group != "health"]  # probes leave no row
        while (found := _count(pg, rows + " AND shadow", started[0])) < ROUNDS * len(logged):
            by_endpoint = pg.execute(
                "SELECT endpoint, count(*) FROM ml_service_requests WHERE service_name ="
                " 'django' AND created_at >= %s AND shadow GROUP BY endpoint",
                (started[0],),
            ).fetchall()
            assert time.monotonic() < deadline, (
                f"the candidate's shadow rows are missing: {found} of"
                f" {ROUNDS * len(logged)}, by endpoint {sorted(by_endpoint)};"
                f" mirrors that failed: {_failed(report)};"
                f" the candidate's writer: {_writer_counts(backends.services['django'])}"
            )
            time.sleep(0.2)
        assert _count(pg, rows + " AND endpoint = ANY(%s)", started[0], WRITE_PATHS) == 0
        # every candidate row is a shadow row, and none of them added usage
        assert _count(pg, rows + " AND NOT shadow", started[0]) == 0
        usage = "SELECT sum(total_requests) FROM ml_service_usage WHERE service_name = 'django'"
        assert _count(pg, usage) == usage_before

    for op in MIRRORED:
        seen = report[op.operation_id]
        if COMPARATORS[op.operation_id].deterministic:
            assert seen["match_rate"] == 1.0, (op.operation_id, seen)
        assert seen["latency_ms"]["candidate"]["p50"] is not None
    assert not any(op.operation_id in report for op in OPERATIONS if op.writes)
    assert 'gateway_shadow_requests_total{candidate="django"' in metrics

    verdict = _switch_check(env, "django", "--no-contract")
    assert verdict.returncode == 0, verdict.stdout
    assert "READY" in verdict.stdout


@pytest.mark.timeout(600)
def test_a_perturbed_field_is_named_by_the_report_and_switch_check(
    backends: Backends, perturbed_django: RunningService, speech: bytes
) -> None:
    operation_id, field = PERTURBED.split(":")
    env = _gateway_env(
        backends,
        {
            "ML_SERVICE_SHADOW": "perturbed",
            "ML_BACKENDS": json.dumps({"perturbed": perturbed_django.base_url}),
        },
    )
    wanted = [op for op in MIRRORED if op.group == "complexity"]
    with (
        running_service("gateway", env, backends.log_dir) as gateway,
        httpx.Client(base_url=gateway.base_url, timeout=60) as client,
    ):
        for _ in range(ROUNDS):
            for op in wanted:
                assert _send(client, op, "unused", speech).status_code == 200
        report = _report(client, "perturbed", [op.operation_id for op in wanted])
        metrics = client.get("/metrics").text

    perturbed = report[operation_id]
    assert perturbed["match_rate"] == 0.0
    assert [f["field"] for f in perturbed["top_fields"]] == [field]
    example = perturbed["top_fields"][0]["examples"][0]
    assert example["path"] == f"$.{field}"
    assert example["candidate"] == pytest.approx(example["primary"] + 1)
    others = [op.operation_id for op in wanted if op.operation_id != operation_id]
    assert all(report[op]["match_rate"] == 1.0 for op in others), report
    assert (
        'gateway_shadow_requests_total{candidate="perturbed",operation="'
        f'{operation_id}",outcome="differs"}}' in metrics
    )

    verdict = _switch_check(env, "perturbed", "--no-contract")
    assert verdict.returncode == 1, verdict.stdout
    line = next(row for row in verdict.stdout.splitlines() if row.startswith(operation_id + " "))
    assert "differs" in line and field in line
    assert "NOT READY" in verdict.stdout


@pytest.mark.timeout(900)
def test_switch_check_runs_the_contract_check_of_the_candidate(
    backends: Backends, perturbed_django: RunningService, migrated_pg_url: str
) -> None:
    """Shadow results all ready, but the candidate breaks a promise: switch-check says no."""
    candidate = f"broken{time.time_ns()}"
    env = _gateway_env(
        backends, {"ML_BACKENDS": json.dumps({candidate: perturbed_django.base_url})}
    )
    with psycopg.connect(migrated_pg_url, autocommit=True) as pg:
        for op in MIRRORED:  # as if ROUNDS mirrored requests of each had matched
            for _ in range(ROUNDS):
                pg.execute(
                    "INSERT INTO ml_shadow_comparisons (primary_backend, candidate,"
                    " operation_id, kind, primary_status, candidate_status, matched, fields,"
                    " primary_ms, candidate_ms, created_at)"
                    " VALUES ('fastapi', %s, %s, 'shadow', 200, 200, true, '[]', 1, 1, now())",
                    (candidate, op.operation_id),
                )
        stored = [_count(pg, f"SELECT count(*) FROM {table}") for table in STORED_BY_WRITES]
        verdict = _switch_check(env, candidate, "--max-examples", "1", timeout_s=800)
        # the candidate shares the primary's data: its contract check wrote nothing
        after = [_count(pg, f"SELECT count(*) FROM {table}") for table in STORED_BY_WRITES]
        assert after == stored, (STORED_BY_WRITES, stored, after)
    out = verdict.stdout
    assert "read-only: not sent (they write)" in out
    judged = [row for row in out.splitlines() if row.split(" ", 1)[0] in COMPARATORS]
    assert len(judged) == len(OPERATIONS)
    assert all(" differs " not in row and " not enough " not in row for row in judged), out
    # the perturbed multiplier breaks "bonus_percent = round((multiplier - 1) * 100)"
    operation_id = PERTURBED.split(":")[0]
    assert f"FAIL [behaviour] {operation_id}/bonus" in out, out[-3000:]
    assert "NOT READY" in out and "(the contract check failed)" in out
    assert verdict.returncode == 1, out[-3000:]
