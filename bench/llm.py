"""Local generation speed: llama-cpp-python called directly vs /analysis/generate per backend.

Run: ``uv run python -m bench.llm [--tokens 64] [--rounds 3] [--backends fastapi,django]``.
Starts its own Postgres/Redis, each backend with LLM_PROVIDER=local and a gateway in front
of it, then alternates the paths within each round (a neighbour's load hits all alike).
Prints tokens/s (completion tokens over wall time, prompt included, same prompt and
settings everywhere), the ratio to raw, and raw time to first token. Asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from backends.core.llm.local import STOP_SEQUENCES, packaged_model_path
from backends.core.settings import EngineSettings
from bench.targets import (
    BACKEND_MODULES,
    BENCH_API_KEY,
    GATEWAY_MODULE,
    gateway_env,
    migrate,
    started,
)
from devinfra.stack import local_services

PROMPT = "Write a short story about a cat who learns to swim."

Sample = tuple[int, float]  # (completion tokens, seconds)


def raw_generator(tokens: int) -> tuple[Callable[[], Sample], Callable[[], float]]:
    """Generation and time-to-first-token with llama-cpp-python, as the engine sets it up."""
    from llama_cpp import Llama

    settings = EngineSettings()
    llama = Llama(
        model_path=str(packaged_model_path()),
        n_ctx=settings.local_llm_context_tokens,
        n_threads=settings.local_llm_threads,
        n_threads_batch=settings.local_llm_threads,
        verbose=False,
    )
    arguments = {
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": tokens,
        "temperature": 0.0,
        "repeat_penalty": settings.local_llm_repeat_penalty,
        "stop": list(STOP_SEQUENCES),
    }

    def generate() -> Sample:
        start = time.perf_counter()
        response = llama.create_chat_completion(**arguments)  # type: ignore[arg-type]
        return response["usage"]["completion_tokens"], time.perf_counter() - start  # type: ignore[index]

    def first_token() -> float:
        start = time.perf_counter()
        for chunk in llama.create_chat_completion(**arguments, stream=True):  # type: ignore[arg-type]
            if chunk["choices"][0]["delta"].get("content"):  # type: ignore[index,union-attr]
                return time.perf_counter() - start
        return float("nan")

    return generate, first_token


def http_generator(base_url: str, tokens: int, headers: dict[str, str]) -> Callable[[], Sample]:
    client = httpx.Client(base_url=base_url, headers=headers, timeout=300)
    body = {"prompt": PROMPT, "max_tokens": tokens, "temperature": 0.0}

    def generate() -> Sample:
        start = time.perf_counter()
        response = client.post("/api/v1/analysis/generate", json=body)
        elapsed = time.perf_counter() - start
        response.raise_for_status()
        answer = response.json()
        assert answer["provider"] == "local", answer
        return answer["usage"]["completion_tokens"], elapsed

    return generate


def rate(samples: list[Sample]) -> float:
    """Median tokens/s over the rounds."""
    return statistics.median(count / seconds for count, seconds in samples)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tokens", type=int, default=64, help="max_tokens per generation")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", default=",".join(BACKEND_MODULES))
    args = parser.parse_args(argv)
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]

    with contextlib.ExitStack() as stack:
        data_dir = Path(tempfile.mkdtemp(prefix="mlapi-bench-llm-"))
        stack.callback(shutil.rmtree, data_dir, ignore_errors=True)
        base_env = {k: v for k, v in os.environ.items() if k != "PORT"}
        urls = stack.enter_context(local_services(data_dir, base_env))
        env = {
            **base_env,
            "DATABASE_URL": urls.database_url,
            "REDIS_URL": urls.redis_url,
            "LLM_PROVIDER": "local",
            # every request is a new generation: the response cache would answer repeats
            "FASTAPI_CACHE_ENABLED": "false",
            "DJANGO_CACHE_ENABLED": "false",
        }
        migrate(env)
        raw, first_token = raw_generator(args.tokens)
        paths: dict[str, Callable[[], Sample]] = {"raw llama-cpp-python": raw}
        for name in backends:
            backend = stack.enter_context(
                started(name, BACKEND_MODULES[name], env, data_dir, expect_backend=name)
            )
            gateway = stack.enter_context(
                started(
                    f"gateway->{name}",
                    GATEWAY_MODULE,
                    gateway_env(name, backend.base_url, env),
                    data_dir,
                    expect_backend=name,
                )
            )
            paths[name] = http_generator(backend.base_url, args.tokens, {})
            paths[f"gateway -> {name}"] = http_generator(
                gateway.base_url, args.tokens, {"X-API-Key": BENCH_API_KEY}
            )
        for generate in paths.values():
            generate()  # warm up: model load, first prompt
        samples: dict[str, list[Sample]] = {name: [] for name in paths}
        first: list[float] = []
        for round_number in range(args.rounds):
            order = list(paths) if round_number % 2 == 0 else list(paths)[::-1]
            for name in order:
                samples[name].append(paths[name]())
            first.append(first_token())

    raw_rate = rate(samples["raw llama-cpp-python"])
    print(f"prompt: {PROMPT!r}, max_tokens {args.tokens}, {args.rounds} rounds, medians")
    print(f"{'path':<28}{'tokens':>8}{'tokens/s':>10}{'x raw':>8}")
    for name, runs in samples.items():
        tokens = statistics.median(count for count, _ in runs)
        print(f"{name:<28}{tokens:>8.0f}{rate(runs):>10.1f}{rate(runs) / raw_rate:>8.2f}")
    print(f"raw time to first token: {statistics.median(first) * 1000:.0f} ms")
    print("(backends answer whole: their time to first byte is the time to the whole answer)")


if __name__ == "__main__":
    main()
