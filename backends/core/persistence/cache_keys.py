"""Response-cache keys: the same request gets the same key in every backend."""

from __future__ import annotations

import hashlib
import json
from typing import Any

# Deterministic endpoints whose successful responses depend only on the body and model.
CACHEABLE_ENDPOINTS = frozenset(
    {
        "/api/v1/embeddings/generate",
        "/api/v1/embeddings/batch",
        "/api/v1/embeddings/similarity",
        "/api/v1/analysis/analyze",
        "/api/v1/analysis/classify",
        "/api/v1/analysis/summarize",
        "/api/v1/analysis/sentiment",
        "/api/v1/analysis/keywords",
    }
)
CACHE_VERSION = "v1"


def request_hash(body: Any) -> str:
    """sha256 of the validated body, normalised (sorted keys, no whitespace)."""
    normalised = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(normalised.encode()).hexdigest()


def cache_key(endpoint: str, body: Any, model_identity: str) -> str:
    """Key = endpoint + normalised body + the model that would answer (not the backend)."""
    digest = hashlib.sha256(
        f"{CACHE_VERSION}|{endpoint}|{model_identity}|{request_hash(body)}".encode()
    ).hexdigest()
    return f"mlcache:{CACHE_VERSION}:{digest}"
