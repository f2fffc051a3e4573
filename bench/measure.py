"""One point: drain the server, warm up, drain again, then a measured wrk run.

Draining matters: when wrk stops, a server still works through the requests it had
accepted (an async app's executor queue, a sync worker's accept backlog); measuring on
top of that leftover work would charge one point's queue to the next.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

from bench import backend_metrics, resources, wrk
from bench.config import BenchConfig
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
    backend_url: str = ""  # the backend itself (its /metrics), whatever the route


def connections_for(scenario: Scenario, config: BenchConfig) -> int:
    """Model-bound scenarios saturate at a few connections; more only builds a queue."""
    if scenario.overload:
        return config.overload_connections
    if scenario.saturating:
        return config.probe_connections
    if scenario.calls_model:
        return min(config.connections, config.model_connections)
    return config.connections


def measure_point(
    spec: PointSpec,
    scenario: Scenario,
    options: wrk.WrkOptions,
    warmup_s: float,
    max_drain_s: float = 60.0,
    *,
    saturating_connections: int = 64,
) -> Point:
    """Warm up for ``warmup_s`` then measure for ``options.duration_s``; RSS/CPU sampled."""
    pids = list(spec.pids.values())
    drained = resources.wait_idle(pids, max_wait_s=max_drain_s)
    if warmup_s > 0:
        warmup = replace(options, duration_s=warmup_s)
        wrk.run(spec.base_url, warmup, scenario.wrk_args(spec.tag + "w"))
        drained += resources.wait_idle(pids, max_wait_s=max_drain_s)
    counts_batches = scenario.calls_model and bool(spec.backend_url)
    before = backend_metrics.snapshot(spec.backend_url) if counts_batches else {}
    background = None
    if scenario.saturating:
        background = _Saturation(spec, scenario, options, saturating_connections)
    with (
        resources.RssSampler(spec.pids) as rss,
        resources.CpuMeter(pids, spec.infra_pids) as cpu,
    ):
        if background is not None:
            background.start()
        res = wrk.run(
            spec.base_url, options, scenario.wrk_args(spec.tag), count_statuses=scenario.overload
        )
        saturating = background.result() if background is not None else None
    batch = None
    if counts_batches:
        batch = backend_metrics.mean_batch(before, backend_metrics.snapshot(spec.backend_url))
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
        statuses=res.statuses,
        mean_batch=None if batch is None else round(batch, 2),
        saturating_rps=None if saturating is None else round(saturating.rps, 1),
    )


class _Saturation:
    """The background load of a ``saturating`` scenario: a second wrk, started first and
    run a little longer so it covers the whole measured run."""

    LEAD_S = 1.0

    def __init__(
        self, spec: PointSpec, scenario: Scenario, options: wrk.WrkOptions, connections: int
    ) -> None:
        self._options = replace(
            options,
            connections=connections,
            duration_s=options.duration_s + 2 * self.LEAD_S,
        )
        self._url = spec.backend_url or spec.base_url
        self._args = scenario.saturating_args(spec.tag + "s")
        self._outcome: wrk.WrkResult | BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self._outcome = wrk.run(self._url, self._options, self._args)
        except BaseException as exc:
            self._outcome = exc

    def start(self) -> None:
        self._thread.start()
        self._thread.join(self.LEAD_S)  # the model is busy before the probe starts

    def result(self) -> wrk.WrkResult:
        self._thread.join()
        if isinstance(self._outcome, BaseException):
            raise self._outcome
        assert self._outcome is not None
        return self._outcome
