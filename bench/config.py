"""Benchmark settings: the defaults fit `make bench` in well under 15 minutes on 2 cores."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bench.scenarios import scenario_names
from bench.targets import BACKEND_MODULES


@dataclass(frozen=True)
class BenchConfig:
    backends: tuple[str, ...] = tuple(BACKEND_MODULES)
    scenarios: tuple[str, ...] = tuple(scenario_names())
    routes: tuple[str, ...] = ("direct", "gateway")
    # wrk -c: 1,000 is sustained without socket errors on the cheap scenarios here (both
    # backends). Scenarios that call the model saturate the 2 cores at a few connections
    # (~100 req/s); at 1,000 they only build a queue (p50 of seconds, timeouts) that takes
    # seconds to drain after every point, so they use ``model_connections``. 6 s points
    # after 2 s warm-up, twice: 48 points plus setup fit in about 12 minutes.
    connections: int = 1000
    model_connections: int = 64
    # embed_overload: 384 single texts in flight, past INFERENCE_QUEUE_SIZE (256) and a
    # batch (32) (a Django worker refuses past its model places, 112 of 128 threads).
    overload_connections: int = 384
    # health_saturated: the /health probe's own connections (the model load is separate).
    probe_connections: int = 4
    threads: int = 2
    duration_s: float = 6.0
    warmup_s: float = 2.0
    timeout_s: float = 10.0
    repeat: int = 2
    cold_starts: int = 5
    rag_documents: int = 10_000
    verify_phases: str = "examples"
    verify_max_examples: int = 2
    out_dir: Path = Path("bench/reports")
    data_dir: Path | None = None  # None: a fresh temporary Postgres + Redis per run
    charts: bool = True
    quick: bool = False

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["out_dir"] = str(self.out_dir)
        data["data_dir"] = str(self.data_dir) if self.data_dir else None
        return data


def quick(config: BenchConfig) -> BenchConfig:
    """A smoke run of about two minutes: short points, one repeat, a smaller corpus."""
    return replace(
        config,
        connections=min(config.connections, 256),
        model_connections=min(config.model_connections, 32),
        duration_s=2.0,
        warmup_s=0.5,
        repeat=1,
        cold_starts=1,
        rag_documents=500,
        quick=True,
    )
