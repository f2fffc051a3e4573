"""The measured scenarios: what each one sends, and which figures it is compared against.

Every scenario is a weighted list of requests for ``bench/lua/profile.lua``. ``{n}`` in a
body becomes a token unique per request, so the shared response cache (keyed on the body)
misses; bodies without it are identical every time, so after the first request they hit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

RAG_COLLECTION = "bench_10k"
EMBED = "/api/v1/embeddings/generate"
EMBED_BATCH = "/api/v1/embeddings/batch"
SEARCH = "/api/v1/rag/search"
SENTIMENT = "/api/v1/analysis/sentiment"


@dataclass(frozen=True)
class RequestSpec:
    """One request kind of a scenario; ``weight`` is its share in a mixed profile."""

    method: str
    path: str
    body: str = ""
    weight: int = 1


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    requests: tuple[RequestSpec, ...]
    why: str
    # One model call per request: compared with the raw onnxruntime batch-1 throughput.
    model_bound: bool = False
    needs_rag_index: bool = False
    # Some requests call the model: the server saturates at a few connections.
    calls_model: bool = False
    # Driven past the inference queue's limit: answers are counted per status (2xx, the
    # intended 503, anything else is an error) at ``overload_connections``.
    overload: bool = False
    # Run by a second wrk at ``model_connections`` while this scenario's own requests are
    # measured at ``probe_connections``: e.g. /health while the model is saturated.
    saturating: tuple[RequestSpec, ...] = ()
    # Measured straight at the backend only (the figure is the backend's, not the route's).
    direct_only: bool = False

    def wrk_args(self, tag: str) -> list[str]:
        """Arguments after ``--`` for profile.lua: tag, then weight/method/path/body groups."""
        return _wrk_args(tag, self.requests)

    def saturating_args(self, tag: str) -> list[str]:
        """profile.lua arguments of the background load (empty when there is none)."""
        return _wrk_args(tag, self.saturating) if self.saturating else []


def _wrk_args(tag: str, requests: tuple[RequestSpec, ...]) -> list[str]:
    args = [tag]
    for spec in requests:
        args += [str(spec.weight), spec.method, spec.path, spec.body]
    return args


def _json(payload: dict[str, object]) -> str:
    return json.dumps(payload, separators=(",", ":"))


HEALTH = RequestSpec("GET", "/health")
EMBED_CACHED = RequestSpec("POST", EMBED, _json({"text": "Vector databases index embeddings."}))
EMBED_UNCACHED = RequestSpec(
    "POST", EMBED, _json({"text": "Support ticket {n}: the nightly export failed after upgrade."})
)
RAG_SEARCH = RequestSpec(
    "POST",
    SEARCH,
    _json(
        {"collection": RAG_COLLECTION, "query": "slow search on big collections {n}", "top_k": 5}
    ),
)
# Single texts, one per connection: at ``overload_connections`` (384) more texts want the
# model than the default INFERENCE_QUEUE_SIZE (256) plus a running batch (32) hold.
EMBED_OVERLOAD = RequestSpec(
    "POST", EMBED, _json({"text": "Overload {n}: the nightly export failed after upgrade."})
)
SENTIMENT_TEXT = RequestSpec(
    "POST",
    SENTIMENT,
    _json({"text": "The release is fast and the results are spot on ({n}). Setup was fiddly."}),
)

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("health", "GET /health", (HEALTH,), "framework floor: routing + JSON, no I/O"),
    Scenario(
        "embed_cached",
        "embeddings/generate, cached",
        (EMBED_CACHED,),
        "same body every request: validation + cache lookup (Redis) + I/O, no model",
    ),
    Scenario(
        "embed_uncached",
        "embeddings/generate, uncached",
        (EMBED_UNCACHED,),
        "unique text per request: one model call + cache write + request log",
        model_bound=True,
        calls_model=True,
    ),
    Scenario(
        "rag_search",
        "rag/search, 10k chunks",
        (RAG_SEARCH,),
        "unique query per request: one model call + pgvector HNSW top-5",
        model_bound=True,
        needs_rag_index=True,
        calls_model=True,
    ),
    Scenario(
        "sentiment",
        "analysis/sentiment, uncached",
        (SENTIMENT_TEXT,),
        "unique text per request: lexicon sentiment (no model) + cache write",
    ),
    Scenario(
        "embed_overload",
        "embeddings/generate, single texts past the queue limit",
        (EMBED_OVERLOAD,),
        "more texts in flight than INFERENCE_QUEUE_SIZE: the intended 503s (Retry-After) vs 2xx",
        calls_model=True,
        overload=True,
        direct_only=True,
    ),
    Scenario(
        "health_saturated",
        "GET /health while embeddings saturate the model",
        (HEALTH,),
        "/health latency at a few connections while uncached embeddings keep the model busy",
        saturating=(EMBED_UNCACHED,),
        direct_only=True,
    ),
    Scenario(
        "mixed",
        "mixed profile",
        (
            replace(EMBED_CACHED, weight=30),
            replace(EMBED_UNCACHED, weight=15),
            replace(RAG_SEARCH, weight=25),
            replace(SENTIMENT_TEXT, weight=20),
            replace(HEALTH, weight=10),
        ),
        "weighted: 30% cached embed, 15% uncached embed, 25% search, 20% sentiment, 10% health",
        needs_rag_index=True,
        calls_model=True,
    ),
)


def scenario_names() -> list[str]:
    return [scenario.name for scenario in SCENARIOS]


def select(names: list[str] | None) -> list[Scenario]:
    """The scenarios named (in catalogue order), all when ``names`` is None."""
    if names is None:
        return list(SCENARIOS)
    unknown = sorted(set(names) - set(scenario_names()))
    if unknown:
        raise ValueError(f"unknown scenario(s) {unknown}; known: {', '.join(scenario_names())}")
    return [scenario for scenario in SCENARIOS if scenario.name in names]
