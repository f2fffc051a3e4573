"""Shadow mode's cost to the primary: the same gateway load with shadowing off and on.

Run: ``uv run python -m bench.shadow [--duration 5] [--connections 16] [--sample-rate 0.1]``.
On one fresh Postgres + Redis it starts both backends and two gateways routed to FastAPI,
one of them mirroring to Django (``ML_SERVICE_SHADOW=django``); verifies both answer; then
runs wrk against each in turn (off, on, off, on: the machine's drift falls on both) with a
mix of a cached embedding and an uncached complexity calculation, and prints the primary's
p50/p99, throughput and errors per side, plus the shadow counters from ``/metrics``.
Writes bench/reports/shadow-<time>.{md,json}. Asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.targets import BACKEND_MODULES
from bench.wrk import WrkOptions, WrkResult
from bench.wrk import run as run_wrk
from devinfra.processes import running_service
from devinfra.stack import local_services

REPORTS = Path(__file__).resolve().parent / "reports"
EMBED = ("POST", "/api/v1/embeddings/generate", '{"text": "Shadow traffic costs nothing."}')
ADJUST = (
    "POST",
    "/api/v1/complexity/calculate-adjustment",
    '{"pre_level": 2, "actual_level": 3, "estimated_hours": 3.0, "actual_hours": 4.5}',
)
MIX = [("3", *EMBED), ("1", *ADJUST)]


def _verify(base_url: str) -> None:
    for method, path, body in (EMBED, ADJUST):
        for _ in range(2):
            response = httpx.request(
                method, base_url + path, content=body,
                headers={"Content-Type": "application/json"}, timeout=60,
            )  # fmt: skip
            if response.status_code != 200:
                raise SystemExit(f"verification failed: {path} at {base_url}: {response.text}")


def _shadow_counters(base_url: str) -> dict[str, float]:
    totals: dict[str, float] = {}
    for line in httpx.get(base_url + "/metrics", timeout=10).text.splitlines():
        if line.startswith("gateway_shadow_requests_total{"):
            outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
            totals[outcome] = totals.get(outcome, 0) + float(line.rsplit(" ", 1)[1])
    return totals


def _row(side: str, result: WrkResult) -> dict[str, Any]:
    return {
        "shadow": side,
        "rps": round(result.rps, 1),
        "p50_ms": round(result.p50_ms, 3),
        "p99_ms": round(result.p99_ms, 3),
        "requests": result.requests,
        "errors": result.errors,
        "timeouts": result.timeouts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sample-rate", default="0.1")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk, or `make setup`)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-shadow-"))
    rows: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        urls = stack.enter_context(local_services(tmp / "services"))
        env = {"DATABASE_URL": urls.database_url, "REDIS_URL": urls.redis_url,
               "ML_SERVICE_GATEWAY_SECRET": "bench-secret"}  # fmt: skip
        subprocess.run(
            [sys.executable, "-m", "backends.django_service.manage", "migrate", "--no-input"],
            env={**os.environ, **env}, check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        backends = {
            name: stack.enter_context(running_service(module, env, tmp, ready_timeout_s=180))
            for name, module in BACKEND_MODULES.items()
        }
        gateway_env = {
            **env,
            "ML_SERVICE_BACKEND": "fastapi",
            "ML_BACKENDS": json.dumps({n: s.base_url for n, s in backends.items()}),
            "GATEWAY_API_KEYS": "",
            "GATEWAY_RATE_LIMIT_PER_MINUTE": "0",
        }
        gateways = {
            "off": stack.enter_context(running_service("gateway", gateway_env, tmp)),
            "on": stack.enter_context(
                running_service(
                    "gateway",
                    {
                        **gateway_env,
                        "ML_SERVICE_SHADOW": "django",
                        "GATEWAY_SHADOW_SAMPLE_RATE": args.sample_rate,
                    },
                    tmp,
                )
            ),
        }
        for gateway in gateways.values():
            _verify(gateway.base_url)
        lua = ["shadow"] + [part for entry in MIX for part in entry]
        options = WrkOptions(connections=args.connections, duration_s=args.duration)
        for gateway in gateways.values():  # warm-up: pools, caches, lazy imports
            run_wrk(gateway.base_url, WrkOptions(args.connections, 1), lua)
        for _ in range(args.rounds):
            for side, gateway in gateways.items():
                result = run_wrk(gateway.base_url, options, lua)
                rows.append(_row(side, result))
                print(json.dumps(rows[-1]), flush=True)
        counters = _shadow_counters(gateways["on"].base_url)
    summary = {}
    for side in gateways:
        mine = [r for r in rows if r["shadow"] == side]
        summary[side] = {
            "p50_ms": round(sorted(r["p50_ms"] for r in mine)[len(mine) // 2], 3),
            "rps": round(sum(r["rps"] for r in mine) / len(mine), 1),
            "errors": sum(r["errors"] for r in mine),
        }
    ratio = summary["on"]["p50_ms"] / summary["off"]["p50_ms"]
    meta = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "duration_s": args.duration,
        "connections": args.connections,
        "sample_rate": args.sample_rate,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    report = {"meta": meta, "runs": rows, "summary": summary, "p50_ratio_on_off": round(ratio, 3),
              "shadow_counters": counters}  # fmt: skip
    lines = [
        "# Shadow mode: primary latency with shadowing off and on",
        "",
        *(f"- {k}: {v}" for k, v in meta.items()),
        "",
        "| shadow | rps | p50 ms | p99 ms | errors | timeouts |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r['shadow']} | {r['rps']} | {r['p50_ms']} | {r['p99_ms']} | {r['errors']} |"
            f" {r['timeouts']} |"
            for r in rows
        ),
        "",
        f"p50 on/off (median of runs): {summary['on']['p50_ms']} / {summary['off']['p50_ms']} ms"
        f" = {ratio:.3f} (target <= 1.05); errors off {summary['off']['errors']}, on "
        f"{summary['on']['errors']}",
        f"shadow outcomes: {json.dumps(counters)}",
    ]
    REPORTS.mkdir(exist_ok=True)
    stem = REPORTS / f"shadow-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {stem}.md and .json")


if __name__ == "__main__":
    main()
