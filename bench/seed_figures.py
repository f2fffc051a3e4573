"""The ceilings the project was designed against (its original plan's "Measured ceilings").

Figures from other hardware and another day (2 cores, wrk on the same cores, 64
connections, 2026-11-24): context for our numbers, never a pass/fail threshold.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from bench.results import RunResult, Summary, find

SOURCE = "the project plan's 'Measured ceilings' (2 cores, 64 conns, 2026-11-24, other hardware)"


@dataclass(frozen=True)
class SeedFigure:
    stack: str
    get_rps: float | None
    post_rps: float | None
    cold_start_s: float | None
    rss_idle_mb: float | None
    # Which of our backends the row is the framework floor of ("" = context only).
    compares_to: str = ""
    note: str = ""


SEED_FIGURES: tuple[SeedFigure, ...] = (
    SeedFigure("bare ASGI, uvicorn (uvloop, httptools), 1 worker", 47_800, 29_100, 0.11, 33),
    SeedFigure("bare ASGI, granian, 1 worker", 64_800, 32_000, 0.11, 61),
    SeedFigure(
        "FastAPI, uvicorn, 1 worker", 9_100, 7_500, 0.31, 51, "fastapi", "256 conns: p99 2 s"
    ),
    SeedFigure("FastAPI, granian, 1 worker", 11_300, 6_400, 0.33, 83, "", "256 conns: p99 28 ms"),
    SeedFigure("Django plain view, gunicorn sync, 2 workers", 7_300, 6_500, 0.24, 111),
    SeedFigure("DRF APIView, gunicorn sync, 2 workers", 5_000, 2_800, 0.24, 111, "django"),
    SeedFigure(
        "DRF APIView, ASGI (uvicorn worker or granian)",
        None,
        None,
        0.27,
        None,
        "",
        "GET 0.5-1.3k, POST 0.5-1.1k, RSS 80-130 MB",
    ),
    SeedFigure(
        "raw-ASGI proxy on httpx.AsyncClient -> FastAPI", 535, 455, None, None, "", "6% of direct"
    ),
    SeedFigure(
        "raw-ASGI proxy on aiohttp client -> FastAPI",
        7_600,
        7_200,
        None,
        None,
        "gateway",
        "84% of direct (GET), 97% (POST)",
    ),
)

# Seed embedding throughput (the project plan, offline model packages): texts/s at batch 32.
SEED_EMBEDDINGS_BATCH32_PER_S = 200.0


def floor_for(name: str) -> SeedFigure | None:
    """The seed row our backend (or "gateway") is measured against, if any."""
    return next((row for row in SEED_FIGURES if row.compares_to == name), None)


SEED_HEADERS = (
    "stack (seed, other hardware)", "GET req/s", "POST req/s", "cold start s", "RSS idle MB",
    "note", "this run, this machine",
)  # fmt: skip


def _n(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _ours(result: RunResult, summaries: list[Summary]) -> dict[str, str]:
    """Our nearest figures, keyed like ``SeedFigure.compares_to``."""
    ours: dict[str, str] = {}
    for b in result.backends:
        health = find(summaries, b.name, "direct", "health")
        cached = find(summaries, b.name, "direct", "embed_cached")
        via = find(summaries, b.name, "gateway", "embed_cached")
        facts = []
        if health:
            facts.append(f"GET /health {_n(health.rps)} ({health.connections} conns)")
        if cached:
            facts.append(f"POST cached embed {_n(cached.rps)}")
        if b.cold_start_s:
            facts.append(f"cold start {statistics.median(b.cold_start_s):.2f} s")
        if "ready" in b.rss_idle_mb:
            facts.append(f"RSS at ready {_n(b.rss_idle_mb['ready'])} MB")
        if facts:
            ours[b.name] = f"{b.name}: " + ", ".join(facts)
        if via and cached and cached.rps:
            kept = f"gateway -> {b.name}: cached embed {via.rps / cached.rps:.0%} of direct"
            ours["gateway"] = "; ".join(filter(None, [ours.get("gateway", ""), kept]))
    return ours


def beside_ours(result: RunResult, summaries: list[Summary]) -> list[list[str]]:
    """Rows of the seed table with our nearest figures in the last column."""
    ours = _ours(result, summaries)
    return [
        [
            row.stack, _n(row.get_rps), _n(row.post_rps), _n(row.cold_start_s, 2),
            _n(row.rss_idle_mb), row.note, ours.get(row.compares_to, ""),
        ]
        for row in SEED_FIGURES
    ]  # fmt: skip
