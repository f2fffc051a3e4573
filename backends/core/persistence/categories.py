"""Endpoint path -> usage category (the ml_service_usage.endpoint_category column)."""

from __future__ import annotations

from shared_schemas.operations import group_of_path

OTHER = "other"


def endpoint_category(path: str) -> str:
    """`/api/v1/<group>/...` -> the contract group; anything else (health, docs) -> other."""
    return group_of_path(path) or OTHER
