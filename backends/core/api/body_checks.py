"""Header checks on a request body, made the same way by both backends (415 / 413)."""

from __future__ import annotations

from backends.core.errors import PayloadTooLarge, UnsupportedMediaType

MULTIPART = "multipart/form-data"


def media_type_of(content_type: str | None) -> str:
    """`application/json; charset=utf-8` -> `application/json` (lower case)."""
    return (content_type or "").split(";")[0].strip().lower()


def require_json(content_type: str | None) -> None:
    """A JSON operation accepts JSON (or a missing Content-Type, read as JSON); else 415."""
    kind = media_type_of(content_type)
    if kind and kind != "application/json" and not kind.endswith("+json"):
        raise UnsupportedMediaType(
            f"Content-Type {kind!r} is not supported here; send application/json"
        )


def require_multipart(content_type: str | None) -> None:
    if media_type_of(content_type) != MULTIPART:
        raise UnsupportedMediaType("This operation takes multipart/form-data")


def too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"Request body exceeds {max_bytes} bytes")


def check_declared_length(content_length: str | None, max_bytes: int) -> None:
    """413 before a byte is read when the declared Content-Length is over the cap."""
    if content_length and content_length.isdigit() and int(content_length) > max_bytes:
        raise too_large(max_bytes)
