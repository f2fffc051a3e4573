"""Response-cache keys: the same request gets the same key in every backend.

Which operations are cached is ``Operation.cacheable``; which model would answer is
``backends.core.api.cache_identity``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

CACHE_VERSION = "v1"


def request_hash(body: Any) -> str:
    """sha256 of the validated body, normalised (sorted keys, no whitespace)."""
    normalised = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(normalised.encode()).hexdigest()


def cache_key_for_hash(endpoint: str, body_hash: str, model_identity: str) -> str:
    """Key = endpoint + the body's ``request_hash`` + the model that would answer."""
    digest = hashlib.sha256(
        f"{CACHE_VERSION}|{endpoint}|{model_identity}|{body_hash}".encode()
    ).hexdigest()
    return f"mlcache:{CACHE_VERSION}:{digest}"


def cache_key(endpoint: str, body: Any, model_identity: str) -> str:
    """Key = endpoint + normalised body + the model that would answer (not the backend)."""
    return cache_key_for_hash(endpoint, request_hash(body), model_identity)
