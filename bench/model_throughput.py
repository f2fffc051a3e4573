"""Raw model throughput in this run: the yardstick for the model-bound scenarios.

Measured on texts shaped like the uncached scenario's (its body's text with a unique token
like profile.lua's in place of ``{n}``: ~30 tokens) with bench/engine.py's alternating
direct-vs-service comparison. engine.py's own sentences are ~17 tokens, on which batch 32
ran ~1.7x faster than on the scenario's texts, so the yardstick overstated the ceiling of
the scenarios it is compared with. Runs in
its own process (``python -m bench.model_throughput`` prints one JSON line) so the model's
threads and memory never share the harness process that drives wrk and samples RSS.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

from bench.engine import compare
from bench.scenarios import EMBED_UNCACHED


@dataclass(frozen=True)
class ModelThroughput:
    model: str
    direct_batch1_per_s: float
    service_batch1_per_s: float
    direct_batch32_per_s: float
    load_s: float


def measure(texts: int = 96, rounds: int = 3) -> ModelThroughput:
    """Texts/s of onnxruntime called directly (batch 1 and 32) and of EmbeddingService."""
    from backends.core.embeddings.registry import EmbeddingRegistry
    from backends.core.embeddings.service import EmbeddingService
    from backends.core.settings import EngineSettings

    # The yardstick is the model at its best on this machine for one caller: intra-op
    # threads sized to the cores (one worker) whatever INFERENCE_THREADS and
    # INFERENCE_WORKERS the servers of this run are given.
    settings = EngineSettings(  # type: ignore[call-arg]
        _env_file=None, embedding_provider="local", inference_threads=None, inference_workers=1
    )
    registry = EmbeddingRegistry(settings)
    service = EmbeddingService(registry)
    provider = registry.local
    start = time.perf_counter()
    provider.load()
    load_s = time.perf_counter() - start
    model = provider.onnx

    # The same steps as bench/engine.py's direct path: tokenise, pad, session.run, mean-pool.
    def direct(group: list[str]) -> object:
        return model.run([model.prepare(t)[0] for t in group])

    sample = scenario_texts(texts)
    batches = [sample[i : i + 32] for i in range(0, len(sample), 32)]
    for group in batches[:2]:  # warm-up: the first runs allocate arenas
        direct(group)
    d1, s1, _ = compare(
        lambda: [direct([t]) for t in sample],
        lambda: [service.generate(t) for t in sample],
        len(sample),
        rounds,
    )
    d32, _, _ = compare(
        lambda: [direct(b) for b in batches],
        lambda: [service.batch(b) for b in batches],
        len(sample),
        rounds,
    )
    return ModelThroughput(provider.model, d1, s1, d32, load_s)


def scenario_texts(n: int) -> list[str]:
    """The uncached scenario's text as the servers receive it: ``{n}`` replaced by a token
    of profile.lua's shape (run tag of bench/runner.py, wrk thread, counter)."""
    template = json.loads(EMBED_UNCACHED.body)["text"]
    return [template.replace("{n}", f"0a1b2c-fastapi-direct-r0-1-{i + 1}") for i in range(n)]


def measure_in_subprocess(timeout_s: float = 300) -> ModelThroughput:
    """Run :func:`measure` in a fresh interpreter and read its JSON line."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.model_throughput"],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"model throughput failed: {done.stderr.strip()[-800:]}")
    return ModelThroughput(**json.loads(done.stdout.strip().splitlines()[-1]))


def model_summary(start: ModelThroughput, end: ModelThroughput) -> dict[str, object]:
    """Mean of the two samples (the yardstick) plus both samples, for the report."""
    return {
        "model": start.model,
        "direct_batch1_per_s": (start.direct_batch1_per_s + end.direct_batch1_per_s) / 2,
        "service_batch1_per_s": (start.service_batch1_per_s + end.service_batch1_per_s) / 2,
        "direct_batch32_per_s": (start.direct_batch32_per_s + end.direct_batch32_per_s) / 2,
        "direct_batch1_samples": [start.direct_batch1_per_s, end.direct_batch1_per_s],
        "load_s": start.load_s,
    }


def main() -> None:
    print(json.dumps(asdict(measure())))


if __name__ == "__main__":
    main()
