"""One benchmark run: infrastructure, verification, cold starts, then every wrk point.

Backends are measured one at a time (the other is stopped) and in alternating order on
each repeat, so neither always runs on a warmer machine or a bigger request log.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import secrets
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench import corpus, resources, wrk
from bench.config import BenchConfig
from bench.measure import PointSpec, connections_for, measure_point
from bench.model_throughput import measure_in_subprocess, model_summary
from bench.results import BackendRun, RunResult
from bench.scenarios import Scenario, select
from bench.summary import run_notes
from bench.targets import (
    BACKEND_MODULES,
    GATEWAY_HEADERS,
    GATEWAY_MODULE,
    Server,
    TargetUnavailable,
    gateway_env,
    importable,
    migrate,
    started,
    verify,
)
from devinfra.stack import local_services


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def new_result(config: BenchConfig) -> RunResult:
    return RunResult(
        started_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        host=socket.gethostname(),
        machine={
            "cpus": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_avg_at_start": round(os.getloadavg()[0], 2),
        },
        config=config.as_dict(),
    )


@dataclass(frozen=True)
class Context:
    """What every step of one run needs."""

    cfg: BenchConfig
    env: dict[str, str]
    log_dir: Path
    result: RunResult
    run_id: str
    infra_pids: list[int]


def run(config: BenchConfig) -> RunResult:
    """Measure every configured backend and route; one bad backend never stops the run."""
    started_at = time.perf_counter()
    wrk.wrk_binary()  # fail before starting anything when the load generator is missing
    result = new_result(config)
    scenarios = select(list(config.scenarios))
    result.backends = [BackendRun(name, available=True) for name in config.backends]
    with contextlib.ExitStack() as stack:
        data_dir = config.data_dir or Path(tempfile.mkdtemp(prefix="mlapi-bench-"))
        if config.data_dir is None:
            stack.callback(shutil.rmtree, data_dir, ignore_errors=True)
        log_dir = data_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        base_env = {k: v for k, v in os.environ.items() if k != "PORT"}
        urls = stack.enter_context(local_services(data_dir, base_env))
        env = {**base_env, "DATABASE_URL": urls.database_url, "REDIS_URL": urls.redis_url}
        migrate(env)
        infra = resources.listening_pids([urls.database_url, urls.redis_url])
        ctx = Context(config, env, log_dir, result, secrets.token_hex(3), infra)
        log("raw model throughput (onnxruntime in its own process, no server)")
        first_model = measure_in_subprocess()
        result.image = resources.image_size()
        for backend in result.backends:
            _cold_starts(backend, ctx)
        for repeat in range(config.repeat):
            order = result.backends if repeat % 2 == 0 else result.backends[::-1]
            for backend in order:
                if backend.available:
                    _bench_backend(backend, repeat, scenarios, ctx)
        # Measured again at the end: neighbours' load moves it, and the ratios use the mean.
        result.model = model_summary(first_model, measure_in_subprocess())
    result.timings_s["total"] = round(time.perf_counter() - started_at, 1)
    result.notes = run_notes(result)
    return result


def _cold_starts(backend: BackendRun, ctx: Context) -> None:
    module = BACKEND_MODULES.get(backend.name)
    if module is None or not importable(module):
        backend.available = False
        backend.reason = f"not available: {module or backend.name!r} is not importable"
        log(f"{backend.name}: {backend.reason}")
        return
    log(f"{backend.name}: {ctx.cfg.cold_starts} cold starts to /ready")
    try:
        backend.cold_start_s = [
            round(s, 3)
            for s in resources.cold_starts(module, ctx.env, ctx.log_dir, count=ctx.cfg.cold_starts)
        ]
    except (RuntimeError, TimeoutError) as exc:
        backend.available, backend.reason = False, f"not available: {exc}"
        log(f"{backend.name}: {backend.reason}")


def _bench_backend(
    backend: BackendRun,
    repeat: int,
    scenarios: list[Scenario],
    ctx: Context,
) -> None:
    cfg, result, first = ctx.cfg, ctx.result, repeat == 0
    with contextlib.ExitStack() as stack:
        try:
            module = BACKEND_MODULES[backend.name]
            server = stack.enter_context(
                started(backend.name, module, ctx.env, ctx.log_dir, expect_backend=backend.name)
            )
        except TargetUnavailable as exc:
            backend.available, backend.reason = False, str(exc)
            log(f"{backend.name}: {exc}")
            return
        if first:
            resources.wait_idle([server.pid], max_wait_s=10)
            backend.rss_idle_mb["ready"] = round(resources.tree_rss_mb(server.pid), 1)
            _verify(backend, "direct", server.base_url, (), ctx)
            resources.wait_idle([server.pid], max_wait_s=30)
            backend.rss_idle_mb["checked"] = round(resources.tree_rss_mb(server.pid), 1)
        if not backend.verified("direct"):
            backend.available = False
            backend.reason = "failed verification: " + backend.verification["direct"]["summary"]
            return
        if any(s.needs_rag_index for s in scenarios):
            seconds = corpus.ensure_indexed(server.base_url, cfg.rag_documents)
            if seconds:
                log(f"indexed {cfg.rag_documents} documents via {backend.name} in {seconds:.0f} s")
                result.timings_s["rag_index"] = round(seconds, 1)
        gateway = _start_gateway(stack, backend, server, ctx, first)
        for scenario in scenarios:
            for route in cfg.routes:
                if scenario.direct_only and route != "direct":
                    continue
                target = server if route == "direct" else gateway
                if target is None:
                    continue
                pids = {"backend": server.pid}
                if route == "gateway":
                    pids["gateway"] = target.pid
                spec = PointSpec(
                    backend.name, route, target.base_url, pids, ctx.infra_pids,
                    GATEWAY_HEADERS if route == "gateway" else (), repeat,
                    tag=f"{ctx.run_id}-{backend.name}-{route}-r{repeat}",
                    backend_url=server.base_url,
                )  # fmt: skip
                conns = connections_for(scenario, cfg)
                options = wrk.WrkOptions(
                    conns, cfg.duration_s, cfg.threads, cfg.timeout_s, spec.headers
                )
                point = measure_point(
                    spec, scenario, options, cfg.warmup_s,
                    saturating_connections=cfg.model_connections,
                )  # fmt: skip
                result.points.append(point)
                log(
                    f"r{repeat} {backend.name:8} {route:8} {scenario.name:15} "
                    f"{point.rps:9.1f} req/s  p50 {point.p50_ms:8.1f} ms  "
                    f"p99 {point.p99_ms:8.1f} ms  errors {point.errors}"
                )


def _start_gateway(
    stack: contextlib.ExitStack,
    backend: BackendRun,
    server: Server,
    ctx: Context,
    first: bool,
) -> Server | None:
    """The gateway routed to ``server``, or None when it is not wanted, startable or verified."""
    cfg = ctx.cfg
    if "gateway" not in cfg.routes or (not first and not backend.verified("gateway")):
        return None
    genv = gateway_env(backend.name, server.base_url, ctx.env)
    try:
        gateway = stack.enter_context(
            started("gateway", GATEWAY_MODULE, genv, ctx.log_dir, expect_backend=backend.name)
        )
    except TargetUnavailable as exc:
        backend.verification["gateway"] = {"passed": False, "summary": str(exc), "seconds": 0.0}
        log(f"gateway -> {backend.name}: {exc}")
        return None
    if first:
        backend.rss_idle_mb["gateway"] = round(resources.tree_rss_mb(gateway.pid), 1)
        _verify(backend, "gateway", gateway.base_url, GATEWAY_HEADERS, ctx)
        log(f"gateway -> {backend.name}: {cfg.cold_starts} cold starts to /ready")
        with contextlib.suppress(RuntimeError, TimeoutError):
            starts = resources.cold_starts(GATEWAY_MODULE, genv, ctx.log_dir, count=cfg.cold_starts)
            backend.gateway_cold_start_s = [round(s, 3) for s in starts]
    return gateway if backend.verified("gateway") else None


def _verify(
    backend: BackendRun,
    route: str,
    url: str,
    headers: tuple[str, ...],
    ctx: Context,
) -> None:
    cfg = ctx.cfg
    report_dir = ctx.log_dir / f"contract-{backend.name}-{route}"
    outcome = verify(
        url,
        phases=cfg.verify_phases,
        max_examples=cfg.verify_max_examples,
        report_dir=report_dir,
        headers=headers,
    )
    backend.verification[route] = {
        "passed": outcome.passed,
        "summary": outcome.summary,
        "seconds": round(outcome.seconds, 1),
    }
    log(f"verify {backend.name} {route}: {outcome.summary}")
