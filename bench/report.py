"""The report: Markdown tables (plus the JSON of every point) from one RunResult."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.results import (
    RunResult,
    Summary,
    find,
    gateway_pairs,
    rankings,
    rankings_agree,
    summarise,
)
from bench.scenarios import SCENARIOS
from bench.seed_figures import SEED_HEADERS, SOURCE, beside_ours

TITLES = {s.name: s.title for s in SCENARIOS}
MODEL_BOUND = {s.name for s in SCENARIOS if s.model_bound}
OVERLOAD = {s.name for s in SCENARIOS if s.overload}
SATURATED = {s.name for s in SCENARIOS if s.saturating}


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def num(value: float | None, digits: int = 1) -> str:
    if value is None or value != value:  # None or NaN
        return "n/a"
    return f"{value:,.{digits}f}"


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _figures(summaries: list[Summary]) -> str:
    rows = [
        [
            TITLES.get(s.scenario, s.scenario), s.backend, s.route, s.connections, num(s.rps),
            f"±{s.spread_pct:.0f}%", num(s.p50_ms), num(s.p95_ms), num(s.p99_ms), num(s.max_ms),
            s.errors, num(s.rss_load_mb, 0), num(s.rss_peak_mb, 0), num(s.server_cpu_cores, 2),
            num(s.infra_cpu_cores, 2), num(s.other_cpu_cores, 2),
        ]
        for s in sorted(summaries, key=lambda s: (list(TITLES).index(s.scenario), s.route))
    ]  # fmt: skip
    headers = [
        "scenario", "backend", "route", "conns", "req/s", "spread", "p50 ms", "p95 ms", "p99 ms",
        "max ms", "errors", "RSS load MB", "RSS peak MB", "server CPU", "pg+redis CPU",
        "other CPU",
    ]  # fmt: skip
    return table(headers, rows)


def _side_by_side(result: RunResult, summaries: list[Summary]) -> str:
    names = [b.name for b in result.backends if any(s.backend == b.name for s in summaries)]
    rows = []
    for scenario in TITLES:
        cells = [find(summaries, name, "direct", scenario) for name in names]
        if not any(cells):
            continue
        best = max((c for c in cells if c), key=lambda c: c.rps)
        rows.append(
            [TITLES[scenario]]
            + [f"{num(c.rps)} ({num(c.p99_ms)} ms)" if c else "n/a" for c in cells]
            + [best.backend]
        )
    return table(["scenario (direct)", *[f"{n} req/s (p99)" for n in names], "fastest"], rows)


def _gateway_title(scenario: str) -> str:
    if scenario == "health":  # /health, /ready, /metrics are the gateway's own routes
        return "GET /health (answered by the gateway itself: not proxy overhead)"
    return TITLES.get(scenario, scenario)


def _kept(direct: Summary, via: Summary) -> str:
    if direct.scenario == "health" or not direct.rps:
        return "n/a"
    return f"{via.rps / direct.rps:.0%}"


def _added(direct: Summary, via: Summary) -> str:
    return "n/a" if direct.scenario == "health" else num(via.p50_ms - direct.p50_ms, 2)


def _gateway(summaries: list[Summary]) -> str:
    rows = [
        [
            direct.backend, _gateway_title(direct.scenario), num(direct.rps),
            num(via.rps), _kept(direct, via), _added(direct, via), num(via.rss_load_mb, 0),
        ]
        for direct, via in gateway_pairs(summaries)
    ]  # fmt: skip
    headers = ["backend", "scenario", "direct req/s", "via gateway req/s", "kept"]
    return table([*headers, "added p50 ms", "gateway RSS load MB"], rows)


def _samples(model: dict[str, Any]) -> str:
    return " and ".join(num(v) for v in model.get("direct_batch1_samples", [])) or "n/a"


def _ratio(value: float, of: float | None) -> str:
    return f"{value / of:.2f}x" if of else "n/a"


def _model_bound(result: RunResult, summaries: list[Summary]) -> str:
    raw = result.model.get("direct_batch1_per_s")
    raw32 = result.model.get("direct_batch32_per_s")
    if not raw:
        return "Raw model throughput was not measured."
    lines = [
        f"Raw model in this run ({result.model.get('model')}, onnxruntime called directly, one "
        "process, no server, on texts shaped like the uncached scenario's): batch 1 "
        f"**{num(raw)} texts/s**, through EmbeddingService "
        f"{num(result.model.get('service_batch1_per_s'))} texts/s, batch 32 "
        f"**{num(raw32)} texts/s**. Each request of these scenarios embeds one text; the "
        "inference runtime batches concurrent requests, so batch 32 is the ceiling and batch 1 "
        f"the floor. Measured at the start and the end of the run ({_samples(result.model)} "
        "texts/s at batch 1) and averaged: neighbours' load moves it as much as it moves the "
        "servers. Mean batch: items per model call in the backend during the point (its "
        "/metrics). RSS: the backend's whole process tree under load (median).",
        "",
    ]
    rows = [
        [
            TITLES[s.scenario], s.backend, s.route, s.connections, num(s.rps), _ratio(s.rps, raw),
            _ratio(s.rps, raw32), num(s.mean_batch), num(s.p50_ms), num(s.p99_ms),
            num(s.p99_ms / s.p50_ms, 2) if s.p50_ms else "n/a", s.errors, num(s.rss_load_mb, 0),
        ]
        for s in summaries
        if s.scenario in MODEL_BOUND
    ]  # fmt: skip
    headers = [
        "scenario", "backend", "route", "conns", "req/s", "of raw batch 1", "of raw batch 32",
        "mean batch", "p50 ms", "p99 ms", "p99/p50", "errors", "RSS MB",
    ]  # fmt: skip
    lines.append(table(headers, rows))
    return "\n".join(lines)


def _overload(summaries: list[Summary]) -> str:
    rows = []
    for s in summaries:
        if s.scenario not in OVERLOAD:
            continue
        ok = sum(n for code, n in s.statuses.items() if 200 <= code < 300)
        refused = s.statuses.get(503, 0)
        other = sum(s.statuses.values()) - ok - refused
        sockets = max(0, s.errors - refused - other)  # errors counts non-2xx and socket errors
        rows.append(
            [
                TITLES[s.scenario], s.backend, s.route, s.connections, ok, refused, other,
                other + sockets, num(s.p50_ms), num(s.p99_ms),
            ]
        )  # fmt: skip
    if not rows:
        return "Not measured."
    headers = [
        "scenario", "backend", "route", "conns", "2xx", "503 (intended)", "other status",
        "errors (other + socket)", "p50 ms", "p99 ms",
    ]  # fmt: skip
    note = (
        "More requests in flight than the inference queue holds (INFERENCE_QUEUE_SIZE items "
        "per process): the queue answers 503 with Retry-After at once instead of growing. "
        "Anything but 2xx and 503 is an error."
    )
    return "\n".join([note, "", table(headers, rows)])


def _saturated(summaries: list[Summary]) -> str:
    rows = [
        [
            TITLES[s.scenario], s.backend, s.connections, num(s.rps), num(s.p50_ms),
            num(s.p99_ms), s.errors, num(s.saturating_rps),
        ]
        for s in summaries
        if s.scenario in SATURATED
    ]  # fmt: skip
    if not rows:
        return "Not measured."
    headers = ["probe", "backend", "probe conns", "req/s", "p50 ms", "p99 ms", "errors"]
    return table([*headers, "background model req/s"], rows)


def _resources(result: RunResult, summaries: list[Summary]) -> str:
    rows = []
    for b in result.backends:
        mine = [s for s in summaries if s.backend == b.name and s.route == "direct"]
        cold, gw_cold = _median(b.cold_start_s), _median(b.gateway_cold_start_s)
        rows.append(
            [
                b.name,
                num(b.rss_idle_mb.get("ready"), 0),
                num(b.rss_idle_mb.get("checked"), 0),
                num(_median([s.rss_load_mb for s in mine]), 0),
                num(max((s.rss_peak_mb for s in mine), default=None), 0),
                f"{num(cold, 2)} s (n={len(b.cold_start_s)})" if cold else "n/a",
                num(b.rss_idle_mb.get("gateway"), 0),
                f"{num(gw_cold, 2)} s" if gw_cold else "n/a",
            ]
        )
    headers = [
        "backend", "RSS at ready MB", "RSS idle after check MB", "RSS under load MB (median)",
        "RSS peak MB", "cold start to /ready (median)", "gateway RSS idle MB",
        "gateway cold start",
    ]  # fmt: skip
    notes = [
        "",
        "RSS covers the whole process tree (gunicorn master + workers). 'After check': idle "
        "again after the contract check, which loads every model its cases touch (Whisper "
        "too), so later figures include models a bare /ready does not.",
        f"Image size: {result.image or 'n/a'}.",
    ]
    return "\n".join([table(headers, rows), *notes])


def _agreement(result: RunResult) -> str:
    ranked = rankings(result.points)
    rows = []
    for (route, scenario), orders in sorted(ranked.items()):
        if len(orders[0]) < 2:
            continue
        shown = " / ".join(" > ".join(order) for order in orders)
        rows.append([route, TITLES.get(scenario, scenario), shown, _yes(rankings_agree(orders))])
    if not rows:
        return "Fewer than two backends measured: no ranking to compare."
    return table(["route", "scenario", "ranking per repeat (fastest first)", "agree"], rows)


def _yes(flag: bool) -> str:
    return "yes" if flag else "**no**"


def render_markdown(result: RunResult, charts: Sequence[str] = ()) -> str:
    """The whole report as Markdown; ``charts`` are PNG file names next to it."""
    summaries = summarise(result.points)
    cfg = result.config
    unavailable = [b for b in result.backends if not b.available]
    parts = [
        f"# Backend benchmark: {result.started_at} on {result.host}",
        "",
        f"Machine: {result.machine.get('cpus')} CPUs, {result.machine.get('memory_gb')} GB, "
        f"{result.machine.get('platform')}, Python {result.machine.get('python')}; load average "
        f"at start {result.machine.get('load_avg_at_start')}. wrk -t{cfg.get('threads')} "
        f"-c{cfg.get('connections')}, {cfg.get('duration_s')} s per point after "
        f"{cfg.get('warmup_s')} s warm-up, timeout {cfg.get('timeout_s')} s, "
        f"{cfg.get('repeat')} repeat(s); medians over repeats; spread = (max - min) / median "
        f"of req/s. Total run time {num(result.timings_s.get('total'), 0)} s.",
        "",
        "## Verification (before any load)",
        "",
        table(
            ["backend", "route", "passed", "contract check", "seconds"],
            [
                [b.name, route, _yes(bool(v.get("passed"))), v.get("summary"), v.get("seconds")]
                for b in result.backends
                for route, v in b.verification.items()
            ],
        ),
    ]
    if unavailable:
        parts += ["", "Not benchmarked:", ""]
        parts += [f"- **{b.name}**: {b.reason}" for b in unavailable]
    parts += ["", "## Side by side (direct)", "", _side_by_side(result, summaries)]
    parts += ["", "## Every figure", "", _figures(summaries)]
    parts += ["", "## Gateway overhead (same scenario, direct vs via gateway)", ""]
    parts += [_gateway(summaries)]
    parts += ["", "## Model-bound scenarios vs the raw model", "", _model_bound(result, summaries)]
    parts += ["", "## Past the queue limit", "", _overload(summaries)]
    parts += ["", "## Probes while the model is saturated", "", _saturated(summaries)]
    parts += ["", "## Memory, cold start, image", "", _resources(result, summaries)]
    parts += ["", "## Run-to-run agreement", "", _agreement(result)]
    parts += ["", f"## Seed figures: {SOURCE}", ""]
    parts += ["Other hardware, trivial endpoints: context, not a comparison one to one.", ""]
    parts += [table(SEED_HEADERS, beside_ours(result, summaries))]
    if charts:
        parts += ["", "## Charts", ""] + [f"![{name}]({name})" for name in charts]
    if result.notes:
        parts += ["", "## Notes", ""] + [f"- {note}" for note in result.notes]
    return "\n".join(parts) + "\n"


def to_json(result: RunResult) -> dict[str, Any]:
    data = asdict(result)
    data["summaries"] = [asdict(s) for s in summarise(result.points)]
    data["rankings"] = {f"{r}/{s}": o for (r, s), o in rankings(result.points).items()}
    return data


def write(result: RunResult, out_dir: Path, stem: str, charts: Sequence[str] = ()) -> Path:
    """Write ``<stem>.md`` and ``<stem>.json`` into ``out_dir``; return the Markdown path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{stem}.json").write_text(json.dumps(to_json(result), indent=2) + "\n")
    markdown = out_dir / f"{stem}.md"
    markdown.write_text(render_markdown(result, charts))
    return markdown
