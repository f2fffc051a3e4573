"""`make soak`: a bounded local soak of one backend through the gateway; prints figures.

Starts a fresh embedded Postgres and Redis, the backend and the gateway as real processes,
then drives a mixed profile (uncached embeddings, sentiment and keywords, a cached
sentiment, a GET) from ``--concurrency`` closed-loop clients for ``--seconds`` after a
warm-up: as fast as the stack answers, the highest rate it sustains. Each request carries
a unique X-Request-ID; afterwards the rows in ml_service_requests are reconciled with the
acknowledged requests (exactly one each). Prints errors, req/s, p50/p99, the RSS growth
of the backend and the gateway from the end of the warm-up, and the reconciliation; exits
1 when there were errors, a lost or duplicated row, or RSS grew by 10% or more.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from devinfra.processes import running_service
from devinfra.stack import local_services

MODULES = {"fastapi": "backends.fastapi_service", "django": "backends.django_service"}
MAX_RSS_GROWTH = 0.10


@dataclass
class Tally:
    acknowledged: list[str] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)


def _profile(i: int) -> tuple[str, str, dict[str, Any] | None]:
    text = f"soak request {i}: the service answered quickly and well"
    return [
        ("POST", "/api/v1/embeddings/generate", {"text": text}),
        ("POST", "/api/v1/analysis/sentiment", {"text": text}),
        ("POST", "/api/v1/analysis/keywords", {"text": text}),
        ("POST", "/api/v1/analysis/sentiment", {"text": "always the same: a cache hit"}),
        ("GET", "/api/v1/complexity/scale", None),
    ][i % 5]


async def _client(base_url: str, until: float, counter: list[int], tally: Tally | None) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        while time.monotonic() < until:
            counter[0] += 1
            method, path, body = _profile(counter[0])
            request_id = f"soak-{uuid.uuid4().hex}"
            started = time.perf_counter()
            try:
                response = await client.request(
                    method, path, json=body, headers={"X-Request-ID": request_id}
                )
                outcome = str(response.status_code)
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            if tally is None:
                continue
            tally.latencies_ms.append((time.perf_counter() - started) * 1000)
            if outcome == "200":
                tally.acknowledged.append(request_id)
            else:
                tally.errors[outcome] = tally.errors.get(outcome, 0) + 1


async def _drive(base_url: str, seconds: float, concurrency: int, tally: Tally | None) -> None:
    until = time.monotonic() + seconds
    counter = [0]
    await asyncio.gather(*(_client(base_url, until, counter, tally) for _ in range(concurrency)))


def _rss_bytes(pid: int) -> int:
    """RSS of a service: its main process and every worker."""
    process = psutil.Process(pid)
    total = 0
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += member.memory_info().rss
    return total


def _reconcile(database_url: str, request_ids: list[str], timeout_s: float = 30) -> tuple[int, int]:
    """(missing, duplicated) acknowledged requests, once the log writers had time to flush."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(database_url, autocommit=True) as pg:
        while True:
            rows = pg.execute(
                "SELECT request_id, count(*) FROM ml_service_requests"
                " WHERE request_id = ANY(%s) GROUP BY request_id",
                (request_ids,),
            ).fetchall()
            counts = {row[0]: row[1] for row in rows}
            if len(counts) == len(request_ids) or time.monotonic() > deadline:
                missing = len(set(request_ids) - set(counts))
                return missing, sum(1 for n in counts.values() if n > 1)
            time.sleep(0.5)


def run(backend: str, seconds: float, warmup_s: float, concurrency: int) -> int:
    data_dir = Path(tempfile.mkdtemp(prefix="mlapi-soak-"))
    try:
        return _soak(data_dir, backend, seconds, warmup_s, concurrency)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _soak(data_dir: Path, backend: str, seconds: float, warmup_s: float, concurrency: int) -> int:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    with local_services(data_dir, env) as urls:
        env |= {"DATABASE_URL": urls.database_url, "REDIS_URL": urls.redis_url}
        env |= {"EMBEDDING_PROVIDER": "local", "LLM_PROVIDER": "extractive"}
        subprocess.run(
            [sys.executable, "-m", "backends.django_service.manage", "migrate", "--no-input"],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        with running_service(MODULES[backend], env, data_dir) as service:
            gateway_env = env | {
                "ML_SERVICE_BACKEND": backend,
                f"ML_BACKEND_{backend.upper()}_URL": service.base_url,
            }
            with running_service("gateway", gateway_env, data_dir) as gateway:
                asyncio.run(_drive(gateway.base_url, warmup_s, concurrency, None))
                rss_start = {"backend": _rss_bytes(service.process.pid)}
                rss_start["gateway"] = _rss_bytes(gateway.process.pid)
                tally = Tally()
                started = time.monotonic()
                asyncio.run(_drive(gateway.base_url, seconds, concurrency, tally))
                elapsed = time.monotonic() - started
                rss_end = {"backend": _rss_bytes(service.process.pid)}
                rss_end["gateway"] = _rss_bytes(gateway.process.pid)
        missing, duplicated = _reconcile(urls.database_url, tally.acknowledged)
    total = len(tally.latencies_ms)
    quantiles = statistics.quantiles(tally.latencies_ms, n=100) if total > 1 else [0.0] * 99
    growth = {name: rss_end[name] / rss_start[name] - 1 for name in rss_start}
    print(f"soak: {backend} through the gateway, {concurrency} clients, {elapsed:.0f} s"
          f" after {warmup_s:.0f} s of warm-up")  # fmt: skip
    print(f"requests      {total} ({total / elapsed:.0f} req/s), acknowledged"
          f" {len(tally.acknowledged)}")  # fmt: skip
    print(f"errors        {sum(tally.errors.values())} {tally.errors or ''}")
    print(f"latency       p50 {quantiles[49]:.1f} ms, p99 {quantiles[98]:.1f} ms")
    for name in growth:
        print(f"rss {name:<9} {rss_start[name] / 2**20:.0f} -> {rss_end[name] / 2**20:.0f} MiB"
              f" ({growth[name]:+.1%})")  # fmt: skip
    print(f"rows          missing {missing}, duplicated {duplicated}")
    failed = tally.errors or missing or duplicated or max(growth.values()) >= MAX_RSS_GROWTH
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devinfra soak", description=__doc__)
    parser.add_argument("--backend", choices=sorted(MODULES), default="fastapi")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--warmup", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(argv)
    return run(args.backend, args.seconds, args.warmup, args.concurrency)
