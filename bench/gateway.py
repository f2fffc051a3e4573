"""Gateway overhead: wrk against the backend directly and through the gateway, in one run.

Run: ``uv run python -m bench.gateway [--duration 5] [--connections 1,64,256]
[--backend auto|fastapi|tiny] [--no-reference]``. Starts the backend (the FastAPI service
with embedded Postgres + Redis, or a trivial ASGI upstream when that cannot start) and the
gateway as separate processes, verifies both answer alike, then measures each point direct
and through the gateway back to back, and through nginx as a reference proxy when nginx is
installed. Prints a table; writes bench/reports/gateway-<time>.{md,json}.
Asserts nothing: a benchmark reports, it does not pass or fail.
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
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.gateway_report import markdown_report
from bench.reference_proxy import nginx_proxy
from bench.resources import tree_cpu_s
from bench.wrk import WrkOptions, WrkResult
from bench.wrk import run as run_wrk
from devinfra.processes import RunningService, running_service
from devinfra.stack import local_services

REPORTS = Path(__file__).resolve().parent / "reports"
EMBED_BODY = '{"text": "Vector databases index embeddings for fast search."}'
# (method, path, note); /health is the gateway's own answer, /live is proxied like the API.
ENDPOINTS = [
    ("GET", "/health", "through the gateway: answered by the gateway itself"),
    ("GET", "/live", "proxied GET"),
    ("POST", "/api/v1/embeddings/generate", "proxied POST, ~60 B JSON body"),
]


@dataclass
class Point:
    target: str
    method: str
    path: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    non2xx: int
    # CPU of the proxy in front (the gateway, or nginx for the reference target)
    gateway_cpu_us_per_request: float | None = None
    backend_cpu_us_per_request: float | None = None


def _wrk(url: str, method: str, path: str, connections: int, duration_s: float) -> WrkResult:
    """One wrk run with the harness's script (one thread: wrk shares the 2 cores)."""
    body = EMBED_BODY if method == "POST" else ""
    options = WrkOptions(connections=connections, duration_s=duration_s, threads=1)
    return run_wrk(url, options, ["gateway", "1", method, path, body])


def measure(
    target: str, base: str, method: str, path: str, c: int, args: argparse.Namespace,
    gateway_pid: int | None, backend_pid: int,
) -> Point:  # fmt: skip
    _wrk(base, method, path, c, 1)  # warm-up: pools filled, caches hot
    pids = [pid for pid in (gateway_pid, backend_pid) if pid]
    before = [tree_cpu_s(pid) for pid in pids]
    raw = _wrk(base, method, path, c, args.duration)
    # CPU per request of each server: what decides the ratio once the cores are saturated.
    cpu_us = [
        round((tree_cpu_s(pid) - b) / max(1, raw.requests) * 1e6, 1)
        for pid, b in zip(pids, before, strict=True)
    ]
    return Point(
        target, method, path, c, round(raw.requests / raw.duration_s, 1),
        raw.p50_ms, raw.p99_ms, raw.socket_errors, raw.non_2xx,
        cpu_us[0] if gateway_pid else None, cpu_us[-1],
    )  # fmt: skip


def _start_backend(kind: str, stack: contextlib.ExitStack, tmp: Path) -> tuple[str, RunningService]:
    if kind in ("auto", "fastapi"):
        try:
            urls = stack.enter_context(local_services(tmp / "services"))
            env = {"DATABASE_URL": urls.database_url, "REDIS_URL": urls.redis_url}
            migrate = [sys.executable, "-m", "backends.django_service.manage", "migrate"]
            subprocess.run(
                [*migrate, "--no-input"], env={**os.environ, **env}, check=True,
                capture_output=True, timeout=300,
            )  # fmt: skip
            service = stack.enter_context(
                running_service("backends.fastapi_service", env, tmp, ready_timeout_s=180)
            )
            return "fastapi", service
        except Exception as exc:
            if kind == "fastapi":
                raise
            print(f"note: the FastAPI backend did not start ({exc!r}); using bench.tiny_upstream")
    return "tiny", stack.enter_context(running_service("bench.tiny_upstream", {}, tmp))


def verify(direct: str, gateway: str, backend: str) -> None:
    """Benchmark only what answers correctly (TechEmpower's rule)."""
    for method, path, _ in ENDPOINTS:
        for base in (direct, gateway):
            response = httpx.request(
                method, base + path, content=EMBED_BODY if method == "POST" else None,
                headers={"Content-Type": "application/json"}, timeout=60,
            )  # fmt: skip
            if response.status_code != 200:
                raise SystemExit(f"verification failed: {method} {base}{path} -> {response.text}")
            if base == gateway and path != "/health":
                assert response.headers["x-ml-backend"] == backend, response.headers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--connections", default="1,64,256")
    parser.add_argument("--backend", choices=["auto", "fastapi", "tiny"], default="auto")
    parser.add_argument(
        "--no-reference", action="store_true", help="skip nginx as the reference proxy"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk, or `make setup`)")
    connections = [int(c) for c in args.connections.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    points: list[Point] = []
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        backend, upstream = _start_backend(args.backend, stack, tmp)
        env = {
            "ML_BACKENDS": json.dumps({backend: upstream.base_url}),
            "ML_SERVICE_BACKEND": backend,
        }
        env |= {"GATEWAY_API_KEYS": "", "GATEWAY_RATE_LIMIT_PER_MINUTE": "0"}
        gateway = stack.enter_context(running_service("gateway", env, tmp, ready_timeout_s=60))
        verify(upstream.base_url, gateway.base_url, backend)
        print(f"backend {backend} at {upstream.base_url}; gateway at {gateway.base_url}")
        targets = [("direct", upstream.base_url, None), ("gateway", gateway.base_url, gateway)]
        nginx = None
        if not args.no_reference:
            nginx = stack.enter_context(nginx_proxy(upstream.base_url, tmp))
        if nginx is not None:
            targets.append(("nginx", nginx.base_url, nginx))
            print(f"reference proxy: nginx at {nginx.base_url}")
        elif not args.no_reference:
            print("note: nginx is not installed; no reference proxy (apt-get install nginx-light)")
        for method, path, _ in ENDPOINTS:
            for c in connections:
                for target, base, proxy in targets:
                    pid = proxy.process.pid if proxy is not None else None
                    point = measure(target, base, method, path, c, args, pid, upstream.process.pid)
                    points.append(point)
                    print(
                        f"{method:4} {path:30} c={c:<3} {target:7} {point.rps:9.0f} req/s  "
                        f"p50 {point.p50_ms:7.3f} ms  p99 {point.p99_ms:7.2f} ms  "
                        f"errors {point.errors + point.non2xx}"
                    )
    meta = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "backend": backend,
        "duration_s": args.duration,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "load_average_at_end": os.getloadavg(),
        "endpoints": {path: note for _, path, note in ENDPOINTS},
    }
    REPORTS.mkdir(exist_ok=True)
    stem = REPORTS / f"gateway-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    report = {"meta": meta, "points": [asdict(p) for p in points]}
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    markdown = markdown_report(report)
    stem.with_suffix(".md").write_text(markdown)
    print(markdown)
    print(f"wrote {stem}.md and .json")


if __name__ == "__main__":
    main()
