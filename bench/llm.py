"""Local generation speed: llama-cpp-python called directly vs /analysis/generate per backend.

Run: ``uv run python -m bench.llm [--tokens 64] [--rounds 3] [--backends fastapi,django]``.
Starts its own Postgres/Redis, each backend with LLM_PROVIDER=local and a gateway in front
of it, then alternates the paths within each round (a neighbour's load hits all alike).
Prints tokens/s (completion tokens over wall time, prompt included, same prompt and
settings everywhere) and the ratio to raw, whole and streamed (``stream: true``); for the
streamed runs the time to the first token event and to the last one (the first must come
well before the last, or nothing streamed). Asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class Streamed:
    """One streamed generation: its tokens and when the first, last and end arrived."""

    tokens: int
    first_s: float  # first token (raw) or first token event (HTTP): the first byte of text
    last_s: float  # last token
    total_s: float  # the end (the done event)

    @property
    def sample(self) -> Sample:
        return self.tokens, self.total_s


def raw_generator(tokens: int) -> tuple[Callable[[], Sample], Callable[[], Streamed]]:
    """Whole and streamed generation with llama-cpp-python, as the engine sets it up."""
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
        llama.reset()  # type: ignore[no-untyped-call]  # as the engine does per generation
        start = time.perf_counter()
        response = llama.create_chat_completion(**arguments)  # type: ignore[arg-type]
        return response["usage"]["completion_tokens"], time.perf_counter() - start  # type: ignore[index]

    def streamed() -> Streamed:
        llama.reset()  # type: ignore[no-untyped-call]  # as the engine does per generation
        start = time.perf_counter()
        prompt_tokens: int | None = None
        first = last = float("nan")
        for chunk in llama.create_chat_completion(**arguments, stream=True):  # type: ignore[arg-type]
            if prompt_tokens is None:
                prompt_tokens = llama.n_tokens
            if chunk["choices"][0]["delta"].get("content"):  # type: ignore[index,union-attr]
                last = time.perf_counter() - start
                if math.isnan(first):
                    first = last
        total = time.perf_counter() - start
        return Streamed(llama.n_tokens - (prompt_tokens or 0), first, last, total)

    return generate, streamed


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


def http_streamer(base_url: str, tokens: int, headers: dict[str, str]) -> Callable[[], Streamed]:
    client = httpx.Client(base_url=base_url, headers=headers, timeout=300)
    body = {"prompt": PROMPT, "max_tokens": tokens, "temperature": 0.0, "stream": True}

    def streamed() -> Streamed:
        start = time.perf_counter()
        first = last = float("nan")
        done: dict[str, Any] = {}
        with client.stream("POST", "/api/v1/analysis/generate", json=body) as response:
            response.raise_for_status()
            event = ""
            for line in response.iter_lines():
                if line.startswith("event:"):
                    event = line.removeprefix("event:").strip()
                elif line.startswith("data:") and event == "token":
                    last = time.perf_counter() - start
                    if math.isnan(first):
                        first = last
                elif line.startswith("data:") and event == "done":
                    done = json.loads(line.removeprefix("data:"))
        total = time.perf_counter() - start
        assert done.get("provider") == "local", done
        return Streamed(done["usage"]["completion_tokens"], first, last, total)

    return streamed


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
            # a generation on a loaded machine can take longer than the gateway's 60 s default
            "GATEWAY_TIMEOUTS": json.dumps({"health": 5, "analysis": 600}),
        }
        migrate(env)
        raw, raw_streamed = raw_generator(args.tokens)
        paths: dict[str, Callable[[], Sample]] = {RAW: raw}
        streamers: dict[str, Callable[[], Streamed]] = {RAW: raw_streamed}
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
            key = {"X-API-Key": BENCH_API_KEY}
            paths[name] = http_generator(backend.base_url, args.tokens, {})
            paths[f"gateway -> {name}"] = http_generator(gateway.base_url, args.tokens, key)
            streamers[name] = http_streamer(backend.base_url, args.tokens, {})
            streamers[f"gateway -> {name}"] = http_streamer(gateway.base_url, args.tokens, key)
        for generate in paths.values():
            generate()  # warm up: model load, first prompt
        samples: dict[str, list[Sample]] = {name: [] for name in paths}
        streams: dict[str, list[Streamed]] = {name: [] for name in streamers}
        for round_number in range(args.rounds):
            order = list(paths) if round_number % 2 == 0 else list(paths)[::-1]
            for name in order:
                samples[name].append(paths[name]())
                streams[name].append(streamers[name]())
    report(args, samples, streams)


RAW = "raw llama-cpp-python"


def report(
    args: argparse.Namespace, samples: dict[str, list[Sample]], streams: dict[str, list[Streamed]]
) -> None:
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"prompt: {PROMPT!r}, max_tokens {args.tokens}, {args.rounds} rounds, medians")
    print(f"load average (1, 5, 15 min) at the end: {load}")
    raw_rate = rate(samples[RAW])
    raw_stream_rate = rate([s.sample for s in streams[RAW]])
    print(f"{'path':<24}{'tokens':>7}{'tok/s':>8}{'x raw':>7}{'streamed':>10}{'x raw':>7}")
    for name, runs in samples.items():
        tokens = statistics.median(count for count, _ in runs)
        whole = rate(runs)
        streamed = rate([s.sample for s in streams[name]])
        print(
            f"{name:<24}{tokens:>7.0f}{whole:>8.1f}{whole / raw_rate:>7.2f}"
            f"{streamed:>10.1f}{streamed / raw_stream_rate:>7.2f}"
        )
    print()
    print("streamed: time to the first token (event) and to the last, ms; first before last?")
    print(f"{'path':<24}{'first':>8}{'last':>8}{'end':>8}  first < last in every run")
    for name, streamed_runs in streams.items():
        first = statistics.median(s.first_s for s in streamed_runs) * 1000
        last = statistics.median(s.last_s for s in streamed_runs) * 1000
        end = statistics.median(s.total_s for s in streamed_runs) * 1000
        before = all(s.first_s < s.last_s for s in streamed_runs)
        print(f"{name:<24}{first:>8.0f}{last:>8.0f}{end:>8.0f}  {'yes' if before else 'NO'}")


if __name__ == "__main__":
    main()
