"""Endpoint path -> usage category (the ml_service_usage.endpoint_category column)."""

from __future__ import annotations

CATEGORIES = ("embeddings", "rag", "analysis", "complexity", "transcription")


def endpoint_category(path: str) -> str:
    """`/api/v1/<category>/...` -> category; anything else (health, docs) -> other."""
    parts = path.strip("/").split("/")
    if len(parts) >= 3 and parts[0] == "api" and parts[1] == "v1" and parts[2] in CATEGORIES:
        return parts[2]
    return "other"
