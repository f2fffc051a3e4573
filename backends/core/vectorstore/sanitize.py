"""Make strings storable everywhere: PostgreSQL text/jsonb refuse NUL and lone surrogates."""

from __future__ import annotations

from collections.abc import Mapping

from backends.core.vectorstore.base import Metadata, MetadataValue


def clean_text(text: str) -> str:
    """Drop NUL characters and replace unpaired surrogates (both would make Postgres fail)."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates (e.g. from a JSON "\ud800" escape) cannot be encoded as UTF-8.
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def clean_metadata(metadata: Mapping[str, MetadataValue] | None) -> Metadata:
    """The same cleaning for keys and string values; other scalars pass unchanged."""
    if not metadata:
        return {}
    return {
        clean_text(key): clean_text(value) if isinstance(value, str) else value
        for key, value in metadata.items()
    }
