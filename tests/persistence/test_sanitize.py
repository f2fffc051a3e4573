from __future__ import annotations

import json
from typing import Any

import pytest

from backends.core.persistence.cache_keys import cache_key
from backends.core.persistence.categories import endpoint_category
from backends.core.persistence.sanitize import (
    EncodedJson,
    loggable_invalid_body,
    redact_text,
    sanitize_payload,
)
from backends.core.persistence.sql import UPSERT_USAGE, as_pyformat
from shared_schemas.embeddings import EmbeddingRequest


def test_secrets_and_audio_are_removed_and_keywords_kept() -> None:
    payload = {
        "openai_api_key": "sk-abc",
        "Authorization": "Bearer x",
        "audio": "UklGRiQAAABXQVZF" * 100,
        "max_keywords": 5,
        "nested": [{"token": "t"}],
    }
    cleaned = sanitize_payload(payload)
    assert cleaned["openai_api_key"] == "[redacted]"
    assert cleaned["Authorization"] == "[redacted]"
    assert cleaned["audio"].startswith("[1600 bytes")
    assert cleaned["max_keywords"] == 5
    assert cleaned["nested"] == [{"token": "[redacted]"}]
    assert "sk-abc" not in str(cleaned)


def test_large_payloads_are_truncated() -> None:
    cleaned = sanitize_payload({"texts": ["x" * 5000] * 100})
    assert cleaned["_truncated"] is True
    assert len(str(cleaned)) < 5000


def test_redact_text() -> None:
    assert redact_text("upstream said sk-1 is bad", ["sk-1"]) == "upstream said [redacted] is bad"


def test_cache_key_is_backend_independent_and_order_insensitive() -> None:
    path = "/api/v1/embeddings/generate"
    first = EmbeddingRequest.model_validate_json('{"text": "a", "model": null}')
    reordered = EmbeddingRequest.model_validate_json('{"model": null, "text": "a"}')
    defaulted = EmbeddingRequest.model_validate_json('{"text": "a"}')
    other = EmbeddingRequest.model_validate_json('{"text": "b"}')
    key = cache_key(path, first, "local/m")
    assert key == cache_key(path, reordered, "local/m") == cache_key(path, defaulted, "local/m")
    assert key != cache_key(path, first, "openai/m")
    assert key != cache_key(path, other, "local/m")


@pytest.mark.parametrize(
    ("path", "category"),
    [
        ("/api/v1/rag/search", "rag"),
        ("/api/v1/transcription/transcribe", "transcription"),
        ("/health", "other"),
        ("/api/v1/unknown/x", "other"),
    ],
)
def test_endpoint_category(path: str, category: str) -> None:
    assert endpoint_category(path) == category


def test_pyformat_rejects_reused_placeholders() -> None:
    assert "%s" in as_pyformat(UPSERT_USAGE)
    with pytest.raises(ValueError, match="reuses"):
        as_pyformat("SELECT $1, $1")


@pytest.mark.parametrize(
    ("raw", "logged"),
    [
        (b'{"query": "x", "top_k": Infinity}', {"query": "x", "top_k": "Infinity"}),
        (b'{"top_k": -Infinity, "x": NaN}', {"top_k": "-Infinity", "x": "NaN"}),
        (b'{"top_k": 1e999, "score": 0.5}', {"top_k": "1e999", "score": 0.5}),
    ],
)
def test_an_invalid_body_is_logged_as_strict_json(raw: bytes, logged: dict[str, Any]) -> None:
    cleaned = sanitize_payload(loggable_invalid_body(raw))
    assert cleaned == logged
    json.dumps(cleaned, allow_nan=False)  # what jsonb takes: no NaN, no Infinity


def test_a_body_nested_too_deep_to_decode_is_logged_by_size() -> None:
    raw = b"[" * 10_000 + b"]" * 10_000
    assert loggable_invalid_body(raw) == {"_unparsed_body_bytes": 20_000}


def test_deep_values_are_cut_at_the_depth_limit() -> None:
    nested: Any = "leaf"
    for _ in range(500):
        nested = {"a": [nested]}
    encoded = json.dumps(sanitize_payload(nested))
    assert "nested deeper than" in encoded
    assert "leaf" not in encoded


def test_values_jsonb_refuses_are_replaced() -> None:
    cleaned = sanitize_payload({"x": float("inf"), "y": float("nan"), "s": "a\ud800b\x00"})
    assert cleaned == {"x": None, "y": None, "s": "a?b"}


def test_a_sanitised_object_carries_the_json_text_of_itself() -> None:
    """The text a writer may send instead of encoding the object again is the cleaned
    object's (secrets redacted), and the object is still a plain-looking dict."""
    payload = {
        "api_key": "sk-live-1",
        "text": "naïve \x00✓",
        "top_k": 3,
        "nested": [{"token": "t"}],
    }
    cleaned = sanitize_payload(payload)
    assert isinstance(cleaned, EncodedJson)
    assert cleaned == json.loads(cleaned.text)
    assert cleaned == {
        "api_key": "[redacted]", "text": "naïve ✓", "top_k": 3, "nested": [{"token": "[redacted]"}],
    }  # fmt: skip
    assert "sk-live-1" not in cleaned.text
    # a truncated payload or a non-object is left to the writer to encode
    assert not isinstance(sanitize_payload({"texts": ["x" * 1_999] * 40}), EncodedJson)
    assert sanitize_payload(["a", 1]) == ["a", 1]


def test_a_value_that_is_not_json_is_stored_as_clean_text() -> None:
    """A value JSON has no form for is stored as its str(), cleaned like any other text:
    jsonb refuses a NUL (json.dumps wrote it as the \\u0000 escape) and a lone surrogate
    cannot be sent as UTF-8."""

    class Odd:
        def __str__(self) -> str:
            return "a\x00b\ud800c"

    cleaned = sanitize_payload({"value": Odd(), "vector": [0.25, 1, float("nan")]})
    assert isinstance(cleaned, EncodedJson)
    assert "\\u0000" not in cleaned.text
    cleaned.text.encode()  # UTF-8, as the writer sends it
    assert json.loads(cleaned.text) == {"value": "ab?c", "vector": [0.25, 1, None]}
