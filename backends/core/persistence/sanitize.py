"""Make request/response payloads safe and small enough to store as jsonb."""

from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import Any

from pydantic_core import to_json

from backends.core.vectorstore.sanitize import clean_text

SECRET_KEY_PARTS = ("key", "token", "secret", "password", "authorization", "credential")
BINARY_FIELDS = frozenset({"audio", "file"})
MAX_STRING_CHARS = 2000
MAX_LIST_ITEMS = 50
MAX_PAYLOAD_BYTES = 16_384
MAX_LOGGED_INVALID_BYTES = 64 * 1024  # an invalid body larger than this is logged by size
# deeper values are replaced by a marker: a log needs no more, and the cleaning recursion
# (and json.dumps after it) must stay far from Python's limit of 1,000 frames
MAX_DEPTH = 32
REDACTED = "[redacted]"
_CONTAINERS = (dict, list, tuple)


@lru_cache(maxsize=1024)  # the same few field names, request after request
def _is_secret(key: str) -> bool:
    lowered = key.lower()
    # "max_keywords" and token counts ("max_tokens", "usage.total_tokens") are not secrets
    if "keyword" in lowered or lowered.endswith("tokens"):
        return False
    return any(part in lowered for part in SECRET_KEY_PARTS)


class EncodedJson(dict[str, Any]):
    """A sanitised JSON object that keeps the text ``sanitize_payload`` encoded it to, so a
    writer can send that text instead of encoding the object again (the FastAPI pool's
    jsonb codec does). Still the dict itself for everything else."""

    __slots__ = ("text",)

    def __init__(self, value: dict[str, Any], text: str) -> None:
        super().__init__(value)
        self.text = text


def sanitize_payload(value: Any) -> Any:
    """Redact secrets, drop audio bytes, make it strict JSON jsonb takes, truncate.

    jsonb refuses NUL characters, lone surrogates, NaN and infinities: one such value
    would make Postgres refuse the whole log batch it is written with.
    """
    cleaned = _clean(value)
    # pydantic-core's encoder, not json.dumps: an embeddings answer logs 50 floats, and
    # Python's float repr made json.dumps ~26 us of a ~53 us call (~5 us here). Compact
    # separators; any value that is not JSON is stored as its text, as json's default=str.
    raw = to_json(cleaned, fallback=_as_text)
    encoded = raw.decode()
    if len(raw) <= MAX_PAYLOAD_BYTES:
        return EncodedJson(cleaned, encoded) if isinstance(cleaned, dict) else cleaned
    return {"_truncated": True, "_original_bytes": len(raw), "preview": encoded[:2000]}


def _as_text(value: Any) -> str:
    return clean_text(str(value))


def _clean(value: Any, key: str | None = None, depth: int = 0) -> Any:
    if key is not None and _is_secret(key) and value is not None and value != "":
        return REDACTED
    if isinstance(value, str):  # the common case first: most values are short strings
        if key in BINARY_FIELDS:
            return f"[{len(value)} bytes of audio omitted]"
        text = clean_text(value)
        if len(text) > MAX_STRING_CHARS:
            return text[:MAX_STRING_CHARS] + f"... [{len(text) - MAX_STRING_CHARS} chars omitted]"
        return text
    if isinstance(value, _CONTAINERS) and depth > MAX_DEPTH:
        return f"[nested deeper than {MAX_DEPTH} levels omitted]"
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean(v, str(k), depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        # numbers (a vector's) pass as they are: the checks below cost ~0.4 us an item
        items = [
            v
            if (t := type(v)) is int or (t is float and math.isfinite(v))
            else _clean(v, None, depth + 1)
            for v in value[:MAX_LIST_ITEMS]
        ]
        if len(value) > MAX_LIST_ITEMS:
            items.append(f"[{len(value) - MAX_LIST_ITEMS} more items omitted]")
        return items
    if isinstance(value, bytes):
        if key in BINARY_FIELDS:
            return f"[{len(value)} bytes of audio omitted]"
        return f"[{len(value)} bytes omitted]"
    if isinstance(value, float) and not math.isfinite(value):  # not JSON (jsonb refuses them)
        return None
    return value


def loggable_invalid_body(raw: bytes | dict[str, Any]) -> Any:
    """What the request log keeps of a body that failed validation (sanitised later).

    The decoded JSON (secrets are redacted by key when the record is built), or only the
    size when the body is not JSON, nested too deep to decode, or too large to be worth
    decoding. Python's json accepts NaN, Infinity and 1e999, which are not JSON: they are
    kept as the text the client sent ("Infinity"), so the log shows what was refused.
    """
    if isinstance(raw, dict):  # multipart fields: bytes are replaced by their size later
        return raw
    if not raw.strip():
        return None
    if len(raw) <= MAX_LOGGED_INVALID_BYTES:
        try:
            return json.loads(raw, parse_constant=str, parse_float=_finite_or_text)
        except (ValueError, RecursionError):  # RecursionError: nested ~1,000 levels deep
            pass
    return {"_unparsed_body_bytes": len(raw)}


def _finite_or_text(literal: str) -> float | str:
    number = float(literal)
    return number if math.isfinite(number) else literal


def redact_text(text: str | None, secrets: list[str]) -> str | None:
    """Remove any configured secret value that leaked into free text (error messages)."""
    if text is None:
        return None
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text.replace("\x00", "")
