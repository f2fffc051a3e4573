"""Read request bodies with a size cap and check their media type (413 / 415)."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request

from backends.core.api.limits import MAX_FIELD_BYTES, MAX_FIELDS, MAX_FILES
from backends.core.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_json_body(request: Request, max_bytes: int) -> bytes:
    """The raw body of a JSON operation; a missing Content-Type is read as JSON."""
    media_type = _media_type(request)
    if media_type and media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType(
            f"Content-Type {media_type!r} is not supported here; send application/json"
        )
    return await read_capped(request, max_bytes)


async def read_capped(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"Request body exceeds {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"Request body exceeds {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_form_fields(
    request: Request, max_bytes: int
) -> tuple[dict[str, Any], dict[str, str]]:
    """Multipart fields (uploaded files become bytes, other parts strings) and file names."""
    if _media_type(request) != "multipart/form-data":
        raise UnsupportedMediaType("This operation takes multipart/form-data")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"Request body exceeds {max_bytes} bytes")
    try:
        form = await request.form(
            max_files=MAX_FILES, max_fields=MAX_FIELDS, max_part_size=MAX_FIELD_BYTES
        )
    except Exception as exc:  # python-multipart raises several types for broken framing
        raise BadRequest(f"Malformed multipart body: {exc}") from None
    fields: dict[str, Any] = {}
    filenames: dict[str, str] = {}
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read(max_bytes + 1)
                if len(data) > max_bytes:
                    raise PayloadTooLarge(f"Uploaded file exceeds {max_bytes} bytes")
                fields[name] = data
                filenames[name] = value.filename or ""
            else:
                fields[name] = value
    finally:
        await form.close()
    return fields, filenames
