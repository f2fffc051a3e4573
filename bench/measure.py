"""One point: drain the server, warm up, drain again, then a measured wrk run.

Draining matters: when wrk stops, a server still works through the requests it had
accepted (an async app's executor queue, a sync worker's accept backlog); measuring on
top of that leftover work would charge one point's queue to the next.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from bench import resources, wrk
from bench.results import Point
from bench.scenarios import Scenario


@dataclass(frozen=True)
class PointSpec:
    """Where and how to measure: target URL, the process trees behind it, wrk settings."""

    backend: str
    route: str
    base_url: str
    pids: dict[str, int]
    infra_pids: list[int]
    headers: tuple[str, ...]
    repeat: int
    tag: str


def connections_for(scenario: Scenario, connections: int, model_connections: int) -> int:
    """Model-bound scenarios saturate at a few connections; more only builds a queue."""
    return min(connections, model_connections) if scenario.calls_model else connections


def measure_point(
    spec: PointSpec,
    scenario: Scenario,
    options: wrk.WrkOptions,
    warmup_s: float,
    max_drain_s: float = 60.0,
) -> Point:
    """Warm up for ``warmup_s`` then measure for ``options.duration_s``; RSS/CPU sampled."""
    pids = list(spec.pids.values())
    drained = resources.wait_idle(pids, max_wait_s=max_drain_s)
    if warmup_s > 0:
        warmup = replace(options, duration_s=warmup_s)
        wrk.run(spec.base_url, warmup, scenario.wrk_args(spec.tag + "w"))
        drained += resources.wait_idle(pids, max_wait_s=max_drain_s)
    with (
        resources.RssSampler(spec.pids) as rss,
        resources.CpuMeter(pids, spec.infra_pids) as cpu,
    ):
        res = wrk.run(spec.base_url, options, scenario.wrk_args(spec.tag))
    return Point(
        backend=spec.backend,
        route=spec.route,
        scenario=scenario.name,
        repeat=spec.repeat,
        connections=options.connections,
        requests=res.requests,
        rps=round(res.rps, 1),
        p50_ms=round(res.p50_ms, 2),
        p95_ms=None if res.p95_ms is None else round(res.p95_ms, 2),
        p99_ms=round(res.p99_ms, 2),
        max_ms=round(res.max_ms, 2),
        non_2xx=res.non_2xx,
        socket_errors=res.socket_errors,
        rss_load_mb={name: round(rss.median(name), 1) for name in spec.pids},
        rss_peak_mb={name: round(rss.peak(name), 1) for name in spec.pids},
        server_cpu_cores=round(cpu.server_cores, 2),
        infra_cpu_cores=round(cpu.infra_cores, 2),
        other_cpu_cores=round(cpu.other_cores, 2),
        drain_s=round(drained, 1),
    )
