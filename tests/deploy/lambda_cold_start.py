"""Cold start of the Lambda entry point, measured in-process; prints figures, asserts nothing.

    uv run --frozen python -m tests.deploy.lambda_cold_start [--runs 5] [--database-url URL]

Each run is a fresh interpreter (as a new Lambda execution environment is), timing inside
it: the import of the handler module (Lambda's init phase), the app's imports and startup
(engine, vector store, pools: what the first event pays), the first /health, the first
embedding (the model loads), then warm invocations. Without
--database-url the vector store is Qdrant's local mode in a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.deploy.lambda_events import http_api_event

REPO = Path(__file__).resolve().parents[2]
EMBED = "/api/v1/embeddings/generate"
WARM_INVOCATIONS = 50


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def measure_once() -> dict[str, float]:
    """One cold start in this process (call it in a fresh interpreter)."""
    started = time.perf_counter()
    from backends.fastapi_service.lambda_handler import handler

    figures = {"import_handler_ms": _ms(started)}
    step = time.perf_counter()
    import backends.fastapi_service.app  # noqa: F401  (what the first event imports)

    figures["import_app_ms"] = _ms(step)
    step = time.perf_counter()
    handler.start()  # create_app and its lifespan: engine, vector store, pools
    figures["startup_ms"] = _ms(step)

    health = http_api_event("GET", "/health")
    step = time.perf_counter()
    assert handler(health, None)["statusCode"] == 200
    figures["first_health_ms"] = _ms(step)

    def embed(text: str) -> None:
        body = json.dumps({"text": text}).encode()
        event = http_api_event("POST", EMBED, body, **{"content-type": "application/json"})
        response = handler(event, None)
        assert response["statusCode"] == 200, response["body"]

    step = time.perf_counter()
    embed("the first embedding loads the model")
    figures["first_embedding_ms"] = _ms(step)
    figures["cold_total_ms"] = _ms(started)

    warm_health, warm_embed = [], []
    for n in range(WARM_INVOCATIONS):
        step = time.perf_counter()
        handler(health, None)
        warm_health.append(_ms(step))
        step = time.perf_counter()
        embed(f"warm text number {n}")  # distinct texts: no cache hit (and no cache here)
        warm_embed.append(_ms(step))
    figures["warm_health_p50_ms"] = statistics.median(warm_health)
    figures["warm_embedding_p50_ms"] = statistics.median(warm_embed)
    figures["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    handler.close()
    return figures


def _child_env(args: argparse.Namespace, workdir: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "HF_HUB_OFFLINE": "1",
        "DATABASE_URL": args.database_url or "",
        "REDIS_URL": args.redis_url or "",
        "MODEL_CACHE_DIR": str(workdir / "models"),
        "FASTAPI_CACHE_ENABLED": "false",
    }
    if not args.database_url:
        env["QDRANT_PATH"] = str(workdir / "qdrant")
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        json.dump(measure_once(), sys.stdout)
        return

    runs: list[dict[str, Any]] = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="mlapi-lambda-") as tmp:
            done = subprocess.run(
                [sys.executable, "-m", "tests.deploy.lambda_cold_start", "--child"],
                cwd=tmp,  # no .env of the checkout is read
                env=_child_env(args, Path(tmp)),
                capture_output=True,
                text=True,
                timeout=300,
                check=True,
            )
        runs.append(json.loads(done.stdout))

    store = "pgvector (DATABASE_URL)" if args.database_url else "qdrant local mode, no database"
    print(f"Lambda handler cold start, {args.runs} fresh processes, {store}; median [min-max]")
    for key in runs[0]:
        values = [run[key] for run in runs]
        print(
            f"  {key:<24} {statistics.median(values):9.1f}"
            f"   [{min(values):.1f} - {max(values):.1f}]"
        )


if __name__ == "__main__":
    main()
