"""The gateway benchmark's markdown: ratios, targets and the nginx reference."""

from __future__ import annotations

from typing import Any

from bench.gateway_report import markdown_report


def _point(target: str, path: str, c: int, rps: float, p50: float) -> dict[str, Any]:
    return {
        "target": target, "method": "GET", "path": path, "connections": c, "rps": rps,
        "p50_ms": p50, "p99_ms": p50 * 2, "errors": 0, "non2xx": 0,
        "gateway_cpu_us_per_request": None if target == "direct" else 100.0,
        "backend_cpu_us_per_request": 300.0,
    }  # fmt: skip


def _report(points: list[dict[str, Any]]) -> str:
    meta = {
        "when": "2026-12-01T00:00:00+00:00", "backend": "fastapi", "duration_s": 3,
        "machine": "x86_64, 2 cores", "load_average_at_end": (0.5, 0.5, 0.5),
        "endpoints": {"/live": "proxied GET"},
    }  # fmt: skip
    return markdown_report({"meta": meta, "points": points})


def test_ratios_flags_and_reference() -> None:
    points = [
        _point("direct", "/live", 1, 2000, 0.400),
        _point("gateway", "/live", 1, 1000, 0.900),
        _point("nginx", "/live", 1, 1800, 0.450),
        _point("direct", "/live", 64, 3000, 20.0),
        _point("gateway", "/live", 64, 2100, 30.0),
        _point("nginx", "/live", 64, 2900, 21.0),
    ]
    text = _report(points)
    assert "| 70% (below target) |" in text
    assert "+0.500 (above target)" in text
    assert "## Reference: nginx" in text
    assert "| GET /live | 1 | 1800 | 90% | +0.050 | +0.450 | 100 |" in text


def test_no_reference_section_without_nginx_points() -> None:
    text = _report(
        [_point("direct", "/live", 64, 3000, 20.0), _point("gateway", "/live", 64, 2700, 22.0)]
    )
    assert "| 90% |" in text
    assert "Reference" not in text
