"""Local embedding throughput: service layer vs onnxruntime called directly (same run, same texts).

Run: ``uv run python -m bench.engine [--texts 256] [--rounds 3]``. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

from backends.core.embeddings.local import LocalMiniLMProvider
from backends.core.embeddings.registry import EmbeddingRegistry
from backends.core.embeddings.service import EmbeddingService
from backends.core.settings import EngineSettings

_SUBJECTS = ["The new API", "Our team", "The database", "A customer", "The model", "This release"]
_VERBS = ["improves", "slows down", "replaces", "documents", "breaks", "speeds up"]
_OBJECTS = [
    "the search results for long queries",
    "vector indexing on large collections",
    "the nightly batch of invoices",
    "audio transcription in noisy rooms",
    "keyword extraction for short tickets",
    "latency under heavy concurrent load",
]


def make_texts(n: int) -> list[str]:
    """Short, varied sentences (8-14 words), deterministic."""
    texts = []
    for i in range(n):
        s, v, o = _SUBJECTS[i % 6], _VERBS[(i // 6) % 6], _OBJECTS[(i // 36) % 6]
        texts.append(f"{s} {v} {o} (case {i}).")
    return texts


def _timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def compare(
    direct: Callable[[], object], service: Callable[[], object], count: int, rounds: int
) -> tuple[float, float, float]:
    """Median texts/s of each path and the median per-round ratio (service / direct rate).

    The two paths alternate within each round, so a neighbour's load hits both alike.
    """
    d_rates, s_rates, ratios = [], [], []
    for _ in range(rounds):
        d = count / _timed(direct)
        s = count / _timed(service)
        d_rates.append(d)
        s_rates.append(s)
        ratios.append(s / d)
    return statistics.median(d_rates), statistics.median(s_rates), statistics.median(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--batch1-texts", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    settings = EngineSettings(  # type: ignore[call-arg]
        _env_file=None, embedding_provider="local"
    )
    registry = EmbeddingRegistry(settings)
    service = EmbeddingService(registry)
    provider: LocalMiniLMProvider = registry.local
    start = time.perf_counter()
    provider.load()
    load_s = time.perf_counter() - start
    model = provider.onnx

    texts = make_texts(args.texts)
    singles = texts[: args.batch1_texts]
    batches = [texts[i : i + 32] for i in range(0, len(texts), 32)]

    # Direct: the model's own tokenise, pad, session.run, mean-pool; no queue or service.
    def direct(group: list[str]) -> object:
        return model.run([model.prepare(t)[0] for t in group])

    for group in batches[:2]:  # warm-up: first runs allocate arenas
        direct(group)
        service.batch(group)

    rows = [
        (
            "batch 1",
            *compare(
                lambda: [direct([t]) for t in singles],
                lambda: [service.generate(t) for t in singles],
                len(singles),
                args.rounds,
            ),
        ),
        (
            "batch 32",
            *compare(
                lambda: [direct(b) for b in batches],
                lambda: [service.batch(b) for b in batches],
                len(texts),
                args.rounds,
            ),
        ),
    ]

    load1, load5, _ = os.getloadavg()
    print(f"local embeddings: {provider.model} int8 ONNX, {provider.dimensions} dims")
    print(
        f"cpu: {os.cpu_count()} cores, {platform.machine()}; "
        f"workers={registry.runtime.workers} x intra_op_threads="
        f"{registry.runtime.intra_op_threads(registry.runtime.workers)}; "
        f"model load {load_s:.2f} s; load average {load1:.2f} (1 min) {load5:.2f} (5 min)"
    )
    print(f"texts: {len(texts)} short sentences (8-14 words); medians of {args.rounds} rounds")
    print()
    print(f"{'':10}{'direct ORT texts/s':>20}{'service texts/s':>18}{'service/direct':>17}")
    for label, d_rate, s_rate, ratio in rows:
        print(f"{label:10}{d_rate:>20.1f}{s_rate:>18.1f}{ratio:>16.3f}x")
    print()
    print("direct = tokenise + pad + session.run + mean-pool on the provider's own session;")
    print("service = EmbeddingService (validation, provider, the runtime's queue, tolist).")
    print("A ratio below 1 is the service layer's cost: overhead = 1 - ratio.")


if __name__ == "__main__":
    main()
