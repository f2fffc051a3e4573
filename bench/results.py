"""What a run measured (plain dataclasses, JSON-ready) and the summaries drawn from it."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

ROUTES = ("direct", "gateway")


@dataclass(frozen=True)
class Point:
    """One wrk measurement: a backend, reached directly or through the gateway, one scenario."""

    backend: str
    route: str
    scenario: str
    repeat: int
    connections: int
    requests: int
    rps: float
    p50_ms: float
    p95_ms: float | None
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int
    # RSS (MB) of each measured process tree ("backend", "gateway"): median during the run, max.
    rss_load_mb: dict[str, float] = field(default_factory=dict)
    rss_peak_mb: dict[str, float] = field(default_factory=dict)
    # CPU (in cores) used by the measured servers, by Postgres + Redis, and by everything
    # else except wrk and the harness: the last is noise from neighbours, shown per point.
    server_cpu_cores: float = 0.0
    infra_cpu_cores: float = 0.0  # Postgres + Redis
    other_cpu_cores: float = 0.0
    drain_s: float = 0.0  # waiting for the server to finish earlier points' leftover requests
    statuses: dict[int, int] = field(default_factory=dict)  # overload scenarios only
    mean_batch: float | None = None  # items per model call (the backend's /metrics)
    saturating_rps: float | None = None  # the background load's req/s, if the scenario had one

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors


@dataclass
class BackendRun:
    """Per-backend facts besides the wrk points: availability, verification, memory, start."""

    name: str
    available: bool
    reason: str = ""
    # route -> {"passed": bool, "summary": str, "seconds": float}
    verification: dict[str, dict[str, Any]] = field(default_factory=dict)
    cold_start_s: list[float] = field(default_factory=list)
    gateway_cold_start_s: list[float] = field(default_factory=list)
    # "ready": just after /ready, before any request; "checked": idle again after the
    # contract check, which loads every model its cases touch (Whisper included).
    rss_idle_mb: dict[str, float] = field(default_factory=dict)

    def verified(self, route: str) -> bool:
        return bool(self.verification.get(route, {}).get("passed"))


@dataclass
class RunResult:
    started_at: str
    host: str
    machine: dict[str, Any]
    config: dict[str, Any]
    backends: list[BackendRun] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    model: dict[str, Any] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    image: str = ""  # one image (compose/Dockerfile) serves every service


@dataclass(frozen=True)
class Summary:
    """Medians over repeats of one (backend, route, scenario) cell."""

    backend: str
    route: str
    scenario: str
    connections: int
    rps: float
    p50_ms: float
    p95_ms: float | None
    p99_ms: float
    max_ms: float
    errors: int
    requests: int
    spread_pct: float  # (max - min) / median of requests/s over repeats
    rps_runs: tuple[float, ...]
    rss_load_mb: float
    rss_peak_mb: float
    server_cpu_cores: float = 0.0
    infra_cpu_cores: float = 0.0
    other_cpu_cores: float = 0.0  # the worst repeat: how disturbed the cell could have been
    statuses: dict[int, int] = field(default_factory=dict)  # summed over repeats
    mean_batch: float | None = None
    saturating_rps: float | None = None


def _median_or_none(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _summed(counts: list[dict[int, int]]) -> dict[int, int]:
    total: dict[int, int] = defaultdict(int)
    for one in counts:
        for status, n in one.items():
            total[status] += n
    return dict(sorted(total.items()))


def summarise(points: list[Point]) -> list[Summary]:
    """One Summary per (backend, route, scenario), in the order the points were taken."""
    groups: dict[tuple[str, str, str], list[Point]] = defaultdict(list)
    for point in points:
        groups[(point.backend, point.route, point.scenario)].append(point)
    out = []
    for (backend, route, scenario), runs in groups.items():
        rps = [p.rps for p in runs]
        median_rps = statistics.median(rps)
        owner = route_owner(route)
        out.append(
            Summary(
                backend=backend,
                route=route,
                scenario=scenario,
                connections=runs[0].connections,
                rps=median_rps,
                p50_ms=statistics.median(p.p50_ms for p in runs),
                p95_ms=_median_or_none([p.p95_ms for p in runs]),
                p99_ms=statistics.median(p.p99_ms for p in runs),
                max_ms=max(p.max_ms for p in runs),
                errors=sum(p.errors for p in runs),
                requests=sum(p.requests for p in runs),
                spread_pct=(max(rps) - min(rps)) / median_rps * 100 if median_rps else 0.0,
                rps_runs=tuple(rps),
                rss_load_mb=statistics.median(p.rss_load_mb.get(owner, 0) for p in runs),
                rss_peak_mb=max(p.rss_peak_mb.get(owner, 0) for p in runs),
                server_cpu_cores=statistics.median(p.server_cpu_cores for p in runs),
                infra_cpu_cores=statistics.median(p.infra_cpu_cores for p in runs),
                other_cpu_cores=max(p.other_cpu_cores for p in runs),
                statuses=_summed([p.statuses for p in runs]),
                mean_batch=_median_or_none([p.mean_batch for p in runs]),
                saturating_rps=_median_or_none([p.saturating_rps for p in runs]),
            )
        )
    return out


def route_owner(route: str) -> str:
    """The process tree a route's requests land on first."""
    return "gateway" if route == "gateway" else "backend"


def find(summaries: list[Summary], backend: str, route: str, scenario: str) -> Summary | None:
    for summary in summaries:
        if (summary.backend, summary.route, summary.scenario) == (backend, route, scenario):
            return summary
    return None


def rankings(points: list[Point]) -> dict[tuple[str, str], list[list[str]]]:
    """(route, scenario) -> per repeat, backends ordered by requests/s (fastest first)."""
    by_cell: dict[tuple[str, str, int], list[Point]] = defaultdict(list)
    for point in points:
        by_cell[(point.route, point.scenario, point.repeat)].append(point)
    out: dict[tuple[str, str], list[list[str]]] = defaultdict(list)
    for (route, scenario, _repeat), runs in sorted(by_cell.items()):
        ordered = sorted(runs, key=lambda p: p.rps, reverse=True)
        out[(route, scenario)].append([p.backend for p in ordered])
    return dict(out)


def rankings_agree(order_per_repeat: list[list[str]]) -> bool:
    """True when every repeat ranked the backends in the same order."""
    return all(order == order_per_repeat[0] for order in order_per_repeat)


def gateway_pairs(summaries: list[Summary]) -> list[tuple[Summary, Summary]]:
    """(direct, via gateway) summaries of every backend and scenario measured both ways."""
    pairs = []
    for direct in (s for s in summaries if s.route == "direct"):
        via = find(summaries, direct.backend, "gateway", direct.scenario)
        if via is not None:
            pairs.append((direct, via))
    return pairs
