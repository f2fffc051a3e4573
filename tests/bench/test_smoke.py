"""End to end: `python -m bench` against the real stack, one backend, two short scenarios."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed"),
]


def test_bench_runs_end_to_end(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    done = subprocess.run(
        [
            sys.executable, "-m", "bench", "--quick", "--backends", "fastapi,nosuch",
            "--scenarios", "health,embed_uncached", "--duration", "1", "--warmup", "0",
            "--cold-starts", "1", "--out", str(tmp_path), "--no-charts",
        ],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    [report_json] = tmp_path.glob("*.json")
    data = json.loads(report_json.read_text())
    backends = {b["name"]: b for b in data["backends"]}
    assert backends["nosuch"]["available"] is False  # reported, not a crash
    assert backends["fastapi"]["verification"]["direct"]["passed"] is True
    measured = {(p["route"], p["scenario"]) for p in data["points"] if p["backend"] == "fastapi"}
    assert ("direct", "health") in measured and ("direct", "embed_uncached") in measured
    health = next(p for p in data["points"] if (p["route"], p["scenario"]) == ("direct", "health"))
    assert health["rps"] > 0 and health["non_2xx"] == 0
    assert data["model"]["direct_batch1_per_s"] > 0
    text = report_json.with_suffix(".md").read_text()
    assert "## Every figure" in text and "nosuch" in text
