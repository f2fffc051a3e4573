"""Response-cache keys: the same request gets the same key in every backend.

Which operations are cached is ``Operation.cacheable``; which model would answer is
``backends.core.api.cache_identity``.
"""

from __future__ import annotations

import hashlib

from pydantic import BaseModel

# v2: the body is hashed as the model's own JSON (v1 dumped a dict, then sorted it again).
CACHE_VERSION = "v2"


def request_hash(body: BaseModel | None) -> str:
    """sha256 of the validated body as JSON: defaults filled in, fields in the model's order,
    so two requests that mean the same get the same hash whatever order their keys had."""
    normalised = body.model_dump_json().encode() if body is not None else b"{}"
    return hashlib.sha256(normalised).hexdigest()


def cache_key_for_hash(endpoint: str, body_hash: str, model_identity: str) -> str:
    """Key = endpoint + the body's ``request_hash`` + the model that would answer."""
    digest = hashlib.sha256(
        f"{CACHE_VERSION}|{endpoint}|{model_identity}|{body_hash}".encode()
    ).hexdigest()
    return f"mlcache:{CACHE_VERSION}:{digest}"


def cache_key(endpoint: str, body: BaseModel | None, model_identity: str) -> str:
    """Key = endpoint + normalised body + the model that would answer (not the backend)."""
    return cache_key_for_hash(endpoint, request_hash(body), model_identity)
