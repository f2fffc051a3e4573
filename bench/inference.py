"""The inference runtime against onnxruntime called directly, in one process, same texts.

Run: ``uv run python -m bench.inference [--texts 512] [--rounds 3] [--threads 1,8,64]``.
Prints figures; asserts nothing.

direct batch 1 / 32: the model's own prepare + run (tokenise, pad, session.run, mean-pool)
from this thread, no queue. runtime N: N threads, each embedding one text per call through
the runtime (the way N concurrent HTTP requests reach it), texts/s and the mean batch the
worker formed. Rounds alternate the paths so a neighbour's load hits all alike.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable

from backends.core.embeddings.local import LocalMiniLMProvider
from backends.core.inference.metrics import InferenceMetrics
from backends.core.inference.runtime import InferenceRuntime
from backends.core.settings import EngineSettings
from bench.engine import make_texts


def _rate(count: int, run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return count / (time.perf_counter() - start)


def _batch_totals(metrics: InferenceMetrics, model: str) -> tuple[float, float]:
    """(batches, items) the worker ran so far."""
    count = metrics.registry.get_sample_value("inference_batch_size_count", {"model": model})
    total = metrics.registry.get_sample_value("inference_batch_size_sum", {"model": model})
    return count or 0.0, total or 0.0


def concurrent_singles(provider: LocalMiniLMProvider, texts: list[str], threads: int) -> None:
    """``threads`` callers share ``texts``, each embedding one text per call."""
    next_index = iter(range(len(texts)))
    lock = threading.Lock()

    def caller() -> None:
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                return
            provider.embed([texts[i]])

    workers = [threading.Thread(target=caller) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--batch1-texts", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", default="1,8,64")
    args = parser.parse_args()
    thread_counts = [int(n) for n in args.threads.split(",")]

    settings = EngineSettings(_env_file=None, embedding_provider="local")  # type: ignore[call-arg]
    runtime = InferenceRuntime(settings)
    provider = LocalMiniLMProvider(runtime)
    model = provider.onnx
    start = time.perf_counter()
    provider.load()
    load_s = time.perf_counter() - start

    texts = make_texts(args.texts)
    singles = texts[: args.batch1_texts]
    batches = [texts[i : i + 32] for i in range(0, len(texts), 32)]

    def direct(group: list[str]) -> object:
        return model.run([model.prepare(t)[0] for t in group])

    for group in batches[:2]:  # warm-up: the first runs allocate arenas
        direct(group)
        provider.embed(group)

    rates: dict[str, list[float]] = {}
    mean_batch: dict[int, list[float]] = {n: [] for n in thread_counts}
    for _ in range(args.rounds):
        rates.setdefault("direct batch 1", []).append(
            _rate(len(singles), lambda: [direct([t]) for t in singles])
        )
        rates.setdefault("direct batch 32", []).append(
            _rate(len(texts), lambda: [direct(b) for b in batches])
        )
        for n in thread_counts:
            before = _batch_totals(runtime.metrics, model.name)
            rates.setdefault(f"runtime, {n} threads", []).append(
                _rate(len(texts), lambda n=n: concurrent_singles(provider, texts, n))  # type: ignore[misc]
            )
            after = _batch_totals(runtime.metrics, model.name)
            mean_batch[n].append((after[1] - before[1]) / max(after[0] - before[0], 1))
    runtime.close()

    medians = {label: statistics.median(values) for label, values in rates.items()}
    batch1, batch32 = medians["direct batch 1"], medians["direct batch 32"]
    load1, load5, _ = os.getloadavg()
    print(f"model: {model.name} int8 ONNX; intra-op threads {runtime.threads}; load {load_s:.2f} s")
    print(
        f"cpu: {os.cpu_count()} cores, {platform.machine()}; "
        f"load average {load1:.2f} (1 min) {load5:.2f} (5 min)"
    )
    print(
        f"texts: {len(texts)} short sentences (8-14 words); medians of {args.rounds} rounds; "
        f"max batch {runtime.limits.max_batch_size}, {runtime.limits.max_batch_tokens} tokens"
    )
    print()
    print(f"{'':22}{'texts/s':>9}{'/ batch 1':>11}{'/ batch 32':>12}{'mean batch':>12}")
    for label, rate in medians.items():
        batch = ""
        if label.startswith("runtime"):
            batch = f"{statistics.median(mean_batch[int(label.split()[1])]):.1f}"
        print(f"{label:22}{rate:>9.1f}{rate / batch1:>10.2f}x{rate / batch32:>11.2f}x{batch:>12}")


if __name__ == "__main__":
    main()
