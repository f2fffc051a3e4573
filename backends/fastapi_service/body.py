"""Read request bodies with a size cap and check their media type (413 / 415)."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request

from backends.core.api.body_checks import (
    check_declared_length,
    require_json,
    require_multipart,
    too_large,
)
from backends.core.api.flow import FormBody, RequestBody
from backends.core.api.limits import MAX_FIELD_BYTES, MAX_FIELDS, MAX_FILES
from backends.core.errors import BadRequest, PayloadTooLarge
from shared_schemas.operations import JSON, Operation


async def read_body(request: Request, operation: Operation, max_bytes: int) -> RequestBody:
    """What ``RequestFlow.prepare`` validates: raw JSON bytes, the form, or None."""
    if operation.request_model is None:
        return None
    if operation.request_content_type == JSON:
        return await read_json_body(request, max_bytes)
    return await read_form(request, max_bytes)


async def read_json_body(request: Request, max_bytes: int) -> bytes:
    """The raw body of a JSON operation; a missing Content-Type is read as JSON."""
    require_json(request.headers.get("content-type"))
    return await read_capped(request, max_bytes)


async def read_capped(request: Request, max_bytes: int) -> bytes:
    check_declared_length(request.headers.get("content-length"), max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_form(request: Request, max_bytes: int) -> FormBody:
    """Multipart fields (uploaded files become bytes, other parts strings) and file names."""
    require_multipart(request.headers.get("content-type"))
    check_declared_length(request.headers.get("content-length"), max_bytes)
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
    return FormBody(fields, filenames)
