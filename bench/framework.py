"""Each backend against its bare framework, and the gateway against direct, in one run.

Run: ``uv run python -m bench.framework [--duration 5] [--backends fastapi,django]``
(``make bench`` runs it after the main benchmark). For each backend it starts, on one
fresh Postgres + Redis: the backend, its bare framework reference (``bench.reference``:
a plain FastAPI route / DRF APIView on the same server and worker settings) and the
gateway routed to the backend; verifies all three answer; then measures with wrk:

- ``/health`` and ``/live``, backend vs reference, at 64 and 1,000 connections;
- cached embeddings (a memory-cache hit + the request log) vs the backend's own ``/live``
  and vs the bare framework parsing the same JSON body and sending the same answer
  (``bench.reference.answer``): a POST with a body costs the server more than a GET,
  so the second ratio says how much of the gap is ours;
- ``/live`` and cached embeddings through the gateway at 64, 256 and 1,000 connections,
  and the added p50 at one connection;
- ``/live`` direct and through the gateway again with the cores split (``pinned``): the
  backend alone on one core in both runs, the gateway and wrk on another. On the shared
  cores wrk, gateway and backend compete for the same CPUs, so the shared ratio measures
  CPU sharing as much as the gateway; the pinned ratio says whether the gateway, given a
  core of its own, keeps up with the backend. Both are reported, each labelled.

Prints the ratios; writes bench/reports/framework-<time>.{md,json}. Asserts nothing.
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
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil

from bench.reference.answer import ANSWER_FILE_ENV
from bench.resources import tree_cpu_s
from bench.targets import BACKEND_MODULES
from bench.wrk import WrkOptions
from bench.wrk import run as run_wrk
from devinfra.processes import RunningService, running_service
from devinfra.stack import local_services

REPORTS = Path(__file__).resolve().parent / "reports"
REFERENCES = {"fastapi": "bench.reference.fastapi_app", "django": "bench.reference.drf_app"}
EMBED = "/api/v1/embeddings/generate"
EMBED_BODY = '{"text": "Vector databases index embeddings for fast search."}'


@dataclass(frozen=True)
class Probe:
    name: str
    method: str
    path: str

    @property
    def body(self) -> str:
        return EMBED_BODY if self.method == "POST" else ""


HEALTH = Probe("health", "GET", "/health")
LIVE = Probe("live", "GET", "/live")
CACHED = Probe("embed_cached", "POST", EMBED)


# (backend's core, gateway's and wrk's core) for the pinned runs
PINNED_CORES = (0, 1)


@dataclass
class Point:
    backend: str
    target: str  # reference | direct | gateway | direct-pinned | gateway-pinned
    probe: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    timeouts: int
    errors: int
    cpu_us_per_request: float


def _measure(
    backend: str, target: str, service: RunningService, probe: Probe, c: int, duration_s: float
) -> Point:
    threads = 1 if c == 1 else 2
    warm = WrkOptions(connections=c, duration_s=1, threads=threads)
    run_wrk(service.base_url, warm, ["fw", "1", probe.method, probe.path, probe.body])
    before = tree_cpu_s(service.process.pid)
    options = WrkOptions(connections=c, duration_s=duration_s, threads=threads, timeout_s=10)
    raw = run_wrk(service.base_url, options, ["fw", "1", probe.method, probe.path, probe.body])
    cpu = (tree_cpu_s(service.process.pid) - before) / max(1, raw.requests) * 1e6
    point = Point(
        backend, target, probe.name, c, round(raw.rps, 1), round(raw.p50_ms, 3),
        round(raw.p99_ms, 3), raw.timeouts, raw.errors, round(cpu, 1),
    )  # fmt: skip
    print(
        f"{backend:8} {target:9} {probe.name:13} c={c:<5} {point.rps:9.0f} req/s  "
        f"p50 {point.p50_ms:8.2f} ms  p99 {point.p99_ms:8.2f} ms  timeouts {point.timeouts}  "
        f"errors {point.errors}  cpu {point.cpu_us_per_request:6.0f} us/req",
        flush=True,
    )
    return point


def _pin_tree(pid: int, cpus: set[int]) -> None:
    """Every thread of a process tree onto ``cpus`` (threads started later inherit it)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError, PermissionError):
            for thread in proc.threads():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.sched_setaffinity(thread.id, cpus)


@contextlib.contextmanager
def _cores_split(backend: RunningService, gateway: RunningService) -> Iterator[bool]:
    """The backend on one core, the gateway and this process (so wrk, its child) on
    another; everything back on all cores after. Yields False with fewer than 2 cores."""
    everything = os.sched_getaffinity(0)
    if len(everything) < 2 or not set(PINNED_CORES) <= everything:
        yield False
        return
    backend_core, other_core = PINNED_CORES
    try:
        _pin_tree(backend.process.pid, {backend_core})
        _pin_tree(gateway.process.pid, {other_core})
        os.sched_setaffinity(0, {other_core})
        yield True
    finally:
        os.sched_setaffinity(0, everything)
        _pin_tree(backend.process.pid, everything)
        _pin_tree(gateway.process.pid, everything)


def _verify(base_url: str, probes: tuple[Probe, ...], cache: bool = True) -> bytes:
    """Benchmark only what answers correctly; a cached probe must really be a hit.

    Returns the last answer's body.
    """
    body = b""
    for probe in probes:
        for _ in range(2):
            response = httpx.request(
                probe.method, base_url + probe.path, content=probe.body or None,
                headers={"Content-Type": "application/json"}, timeout=60,
            )  # fmt: skip
            if response.status_code != 200:
                raise SystemExit(f"verification failed: {probe.path} at {base_url}: {response}")
        if cache and probe is CACHED and response.headers.get("x-cache") != "hit":
            raise SystemExit(f"{base_url}{probe.path} is not served from the cache")
        body = response.content
    return body


@contextlib.contextmanager
def _targets(backend: str, env: dict[str, str], tmp: Path) -> Iterator[dict[str, RunningService]]:
    with contextlib.ExitStack() as stack:
        direct = stack.enter_context(
            running_service(BACKEND_MODULES[backend], env, tmp, ready_timeout_s=180)
        )
        answer = tmp / f"{backend}-cached-answer.json"
        answer.write_bytes(_verify(direct.base_url, (HEALTH, LIVE, CACHED)))
        gateway_env = {
            **env,
            "ML_SERVICE_BACKEND": backend,
            "ML_BACKENDS": json.dumps({backend: direct.base_url}),
            "GATEWAY_API_KEYS": "",
            "GATEWAY_RATE_LIMIT_PER_MINUTE": "0",
        }
        gateway = stack.enter_context(running_service("gateway", gateway_env, tmp))
        reference = stack.enter_context(
            running_service(REFERENCES[backend], {ANSWER_FILE_ENV: str(answer)}, tmp)
        )
        yield {"direct": direct, "gateway": gateway, "reference": reference}


def bench_backend(backend: str, env: dict[str, str], tmp: Path, duration_s: float) -> list[Point]:
    points: list[Point] = []
    with _targets(backend, env, tmp) as targets:
        _verify(targets["reference"].base_url, (HEALTH, LIVE, CACHED), cache=False)
        _verify(targets["gateway"].base_url, (LIVE, CACHED))
        plan: list[tuple[str, Probe, int]] = []
        for c in (64, 1000):
            plan += [("reference", HEALTH, c), ("direct", HEALTH, c)]
            plan += [("reference", LIVE, c), ("direct", LIVE, c)]
            plan += [("reference", CACHED, c), ("direct", CACHED, c)]
        for c in (1, 64, 256, 1000):
            plan += [("direct", LIVE, c), ("gateway", LIVE, c)]
        plan += [("direct", CACHED, 1), ("gateway", CACHED, 1), ("gateway", CACHED, 1000)]
        done: set[tuple[str, str, int]] = set()
        for target, probe, c in plan:
            if (target, probe.name, c) in done:
                continue
            done.add((target, probe.name, c))
            points.append(_measure(backend, target, targets[target], probe, c, duration_s))
        with _cores_split(targets["direct"], targets["gateway"]) as split:
            for c in (64, 256, 1000) if split else ():
                for target in ("direct", "gateway"):
                    service = targets[target]
                    points.append(
                        _measure(backend, f"{target}-pinned", service, LIVE, c, duration_s)
                    )
    return points


def _find(points: list[Point], backend: str, target: str, probe: str, c: int) -> Point | None:
    return next(
        (
            p
            for p in points
            if (p.backend, p.target, p.probe, p.connections) == (backend, target, probe, c)
        ),
        None,
    )


def ratios(points: list[Point]) -> list[dict[str, object]]:
    """The figures the targets are stated in, each with the two points it comes from."""
    rows: list[dict[str, object]] = []

    def add(backend: str, what: str, ratio: float, target: str) -> None:
        rows.append({"backend": backend, "ratio": what, "value": round(ratio, 3), "target": target})

    for backend in sorted({p.backend for p in points}):
        for probe in ("health", "live"):
            for c in (64, 1000):
                ours = _find(points, backend, "direct", probe, c)
                bare = _find(points, backend, "reference", probe, c)
                if ours and bare and bare.rps:
                    add(
                        backend, f"{probe} vs bare framework, c={c}", ours.rps / bare.rps, ">= 0.90"
                    )
        for c in (64, 1000):
            cached = _find(points, backend, "direct", "embed_cached", c)
            live = _find(points, backend, "direct", "live", c)
            if cached and live and live.rps:
                add(backend, f"cached embeddings vs /live, c={c}", cached.rps / live.rps, ">= 0.60")
            bare = _find(points, backend, "reference", "embed_cached", c)
            if cached and bare and bare.rps:
                what = f"cached embeddings vs bare framework POST of the same answer, c={c}"
                add(backend, what, cached.rps / bare.rps, "(how much of the gap is ours)")
        pinned = (
            f"pinned (backend alone on core {PINNED_CORES[0]}, "
            f"gateway + wrk on core {PINNED_CORES[1]})"
        )
        layouts = (
            ("gateway", "direct", "shared cores (wrk, gateway, backend)"),
            ("gateway-pinned", "direct-pinned", pinned),
        )
        for via_target, direct_target, layout in layouts:
            for c in (64, 256, 1000):
                via = _find(points, backend, via_target, "live", c)
                direct = _find(points, backend, direct_target, "live", c)
                if via and direct and direct.rps:
                    what = f"gateway /live vs direct, {layout}, c={c}"
                    add(backend, what, via.rps / direct.rps, ">= 0.85")
        for probe in ("live", "embed_cached"):
            via = _find(points, backend, "gateway", probe, 1)
            direct = _find(points, backend, "direct", probe, 1)
            if via and direct:
                added = via.p50_ms - direct.p50_ms
                add(backend, f"gateway added p50 ms, {probe}, c=1", added, "<= 0.30")
        for p in points:
            if p.backend == backend and p.connections == 1000:
                tail = p.p99_ms / p.p50_ms if p.p50_ms else float("inf")
                name = f"p99/p50 at c=1000, {p.target} {p.probe} (timeouts {p.timeouts})"
                add(backend, name, tail, "<= 5, 0 timeouts")
    return rows


def markdown(meta: dict[str, object], points: list[Point], rows: list[dict[str, object]]) -> str:
    lines = [
        "# Backends vs their bare framework; gateway vs direct",
        "",
        f"{meta['when']} · {meta['machine']} · {meta['duration_s']} s per point · "
        f"load average at end {meta['load_average_at_end']}",
        "",
        "Reference servers: a plain FastAPI route returning a dict, a plain DRF APIView "
        "(bench/reference/), each on the same server and worker settings as its backend. "
        "Their embed_cached parses the same JSON body and sends the backend's cached "
        "answer as fixed bytes: the framework's floor for that request.",
        "",
        "| backend | ratio | value | target |",
        "|---|---|---:|---|",
    ]
    lines += [f"| {r['backend']} | {r['ratio']} | {r['value']} | {r['target']} |" for r in rows]
    lines += [
        "",
        "| backend | target | probe | conns | req/s | p50 ms | p99 ms | timeouts | errors "
        "| server CPU us/req |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {p.backend} | {p.target} | {p.probe} | {p.connections} | {p.rps:.0f} | "
        f"{p.p50_ms:.2f} | {p.p99_ms:.2f} | {p.timeouts} | {p.errors} | "
        f"{p.cpu_us_per_request:.0f} |"
        for p in points
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--backends", default="fastapi,django")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk, or `make setup`)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-framework-"))
    points: list[Point] = []
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        urls = stack.enter_context(local_services(tmp / "services"))
        env = {"DATABASE_URL": urls.database_url, "REDIS_URL": urls.redis_url}
        subprocess.run(
            [sys.executable, "-m", "backends.django_service.manage", "migrate", "--no-input"],
            env={**os.environ, **env}, check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        for backend in args.backends.split(","):
            points += bench_backend(backend.strip(), env, tmp, args.duration)
    rows = ratios(points)
    meta: dict[str, object] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "duration_s": args.duration,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    REPORTS.mkdir(exist_ok=True)
    stem = REPORTS / f"framework-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    report = {"meta": meta, "ratios": rows, "points": [asdict(p) for p in points]}
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(meta, points, rows)
    stem.with_suffix(".md").write_text(text)
    print(text)
    print(f"wrote {stem}.md and .json")


if __name__ == "__main__":
    main()
