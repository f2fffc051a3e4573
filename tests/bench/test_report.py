"""The report renderer on a fake result set: tables, ratios, agreement, JSON and PNGs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from bench import charts, report
from bench.results import BackendRun, Point, RunResult, rankings, summarise
from bench.scenarios import scenario_names

RPS = {"fastapi": 1000.0, "django": 500.0}


def _point(backend: str, route: str, scenario: str, repeat: int, rps: float) -> Point:
    return Point(
        backend=backend,
        route=route,
        scenario=scenario,
        repeat=repeat,
        connections=1000,
        requests=int(rps * 8),
        rps=rps,
        p50_ms=10.0 + repeat,
        p95_ms=20.0,
        p99_ms=30.0,
        max_ms=40.0 + repeat,
        non_2xx=1 if backend == "django" else 0,
        socket_errors=0,
        rss_load_mb={"backend": 200.0, "gateway": 70.0},
        rss_peak_mb={"backend": 250.0 + repeat, "gateway": 75.0},
        other_cpu_cores=0.5 if repeat else 0.0,
    )


def fake_result() -> RunResult:
    points = []
    for repeat in (0, 1):
        for backend, base in RPS.items():
            for scenario in scenario_names():
                rps = base * (1 + 0.1 * repeat)
                # in repeat 1, django wins sentiment: the rankings disagree there
                if scenario == "sentiment" and backend == "django" and repeat == 1:
                    rps = 5000.0
                points.append(_point(backend, "direct", scenario, repeat, rps))
                points.append(_point(backend, "gateway", scenario, repeat, rps * 0.8))
    return RunResult(
        started_at="2026-11-24T08:00:00+00:00",
        host="testhost",
        machine={"cpus": 2, "memory_gb": 24, "platform": "Linux", "python": "3.11"},
        config={"connections": 1000, "threads": 2, "duration_s": 8, "repeat": 2},
        backends=[
            BackendRun(
                "fastapi",
                True,
                verification={"direct": {"passed": True, "summary": "PASSED: 34", "seconds": 2}},
                cold_start_s=[1.0, 1.2, 0.9],
                rss_idle_mb={"ready": 90.0, "checked": 330.0, "gateway": 65.0},
            ),
            BackendRun("django", True, cold_start_s=[1.5]),
            BackendRun("flask", False, reason="not available: backends.flask_service missing"),
        ],
        points=points,
        model={"model": "all-MiniLM-L6-v2", "direct_batch1_per_s": 2000.0},
        timings_s={"total": 600.0},
        notes=["a note"],
        image="n/a: no Docker engine",
    )


def test_summaries_take_medians_and_spread_over_repeats() -> None:
    summaries = summarise(fake_result().points)
    cell = next(
        s for s in summaries if (s.backend, s.route, s.scenario) == ("fastapi", "direct", "health")
    )
    assert cell.rps == 1050.0  # median of 1000 and 1100
    assert round(cell.spread_pct, 1) == 9.5  # (1100 - 1000) / 1050
    assert cell.max_ms == 41.0 and cell.rss_peak_mb == 251.0
    assert cell.other_cpu_cores == 0.5  # the worst repeat
    orders = rankings(fake_result().points)[("direct", "sentiment")]
    assert orders == [["fastapi", "django"], ["django", "fastapi"]]


def test_markdown_shows_every_section_and_figure() -> None:
    text = report.render_markdown(fake_result(), ["x-throughput.png"])
    for heading in (
        "## Verification", "## Side by side (direct)", "## Every figure", "## Gateway overhead",
        "## Model-bound scenarios vs the raw model", "## Memory, cold start, image",
        "## Run-to-run agreement", "## Seed figures", "## Charts", "## Notes",
    ):  # fmt: skip
        assert heading in text
    assert "- **flask**: not available: backends.flask_service missing" in text
    assert "| fastapi | direct | yes | PASSED: 34 | 2 |" in text
    assert "1,050.0 (30.0 ms)" in text  # side by side: req/s (p99)
    assert "| 80% |" in text  # gateway kept 80% of direct
    assert "answered by the gateway itself" in text  # /health is not proxied
    assert "0.53x" in text  # uncached embed: 1050 req/s vs 2000 raw texts/s
    assert (
        "| direct | analysis/sentiment, uncached | fastapi > django / django > fastapi | **no** |"
        in text
    )
    assert "| 90 | 330 | 200 | 251 | 1.00 s (n=3) | 65 |" in text  # memory and cold start
    assert "9,100" in text and "fastapi: GET /health 1,050" in text  # seed beside ours
    assert "![x-throughput.png](x-throughput.png)" in text


def test_files_are_written_and_json_round_trips(tmp_path: Path) -> None:
    result = fake_result()
    pngs = charts.write_charts(summarise(result.points), tmp_path, "r")
    path = report.write(result, tmp_path, "r", pngs)
    assert path == tmp_path / "r.md"
    for png in pngs:
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((tmp_path / "r.json").read_text())
    assert len(data["points"]) == len(result.points)
    assert data["rankings"]["direct/health"] == [["fastapi", "django"], ["fastapi", "django"]]
    assert {s["backend"] for s in data["summaries"]} == {"fastapi", "django"}


def test_model_tables_show_ratios_batches_and_the_overload_split() -> None:
    result = fake_result()
    result.model["direct_batch32_per_s"] = 4000.0
    result.points = [
        replace(p, mean_batch=12.5 + p.repeat)
        if p.scenario == "embed_uncached" and p.backend == "fastapi"
        else replace(p, statuses={200: 30, 503: 70 + p.repeat, 500: 1})
        if p.scenario == "embed_overload"
        else replace(p, saturating_rps=55.0)
        if p.scenario == "health_saturated"
        else p
        for p in result.points
    ]
    text = report.render_markdown(result)
    # uncached embed, fastapi direct: 1050 req/s of 2000 (batch 1) and 4000 (batch 32),
    # mean batch the median of 12.5 and 13.5, p99/p50 the medians' ratio (30 / 10.5)
    row = "| embeddings/generate, uncached | fastapi | direct | 1000 | 1,050.0 | 0.53x | 0.26x |"
    assert f"{row} 13.0 | 10.5 | 30.0 | 2.86 | 0 | 200 |" in text
    # the overload split: 2xx, intended 503, other statuses, errors besides the 503s
    assert "| fastapi | direct | 1000 | 60 | 141 | 2 | 2 | " in text
    assert "| GET /health while embeddings saturate the model | django | 1000 | 525.0 |" in text
