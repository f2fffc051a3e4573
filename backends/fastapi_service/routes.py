"""One generic endpoint per contract operation, all built from shared_schemas.operations.

The endpoint only does HTTP work (read the body, validate with the shared model, look in
the cache, call the engine in a worker thread, write the response); what an operation
means lives in backends.core.api, shared with the Django backend.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import Response

from backends.core.api.api import INLINE_OPERATIONS
from backends.core.api.dispatch import ApiRequest, RawResult
from backends.core.api.validation import parse_json_body, validate_form, validate_path
from backends.core.errors import MLServiceError
from backends.core.persistence.cache_keys import cache_key, request_hash
from backends.core.persistence.sanitize import loggable_invalid_body
from backends.fastapi_service.body import read_form_fields, read_json_body
from backends.fastapi_service.resources import Resources
from shared_schemas.operations import OPERATIONS, Operation

Endpoint = Callable[[Request], Awaitable[Response]]
JSON_MEDIA_TYPE = "application/json"


def install_routes(app: FastAPI) -> None:
    for operation in OPERATIONS:
        app.add_api_route(
            operation.path,
            _endpoint_for(operation),
            methods=[operation.method],
            name=operation.operation_id,
            include_in_schema=False,
        )


async def _api_request(
    request: Request, operation: Operation, resources: Resources, log: dict[str, Any]
) -> ApiRequest:
    limit = resources.settings.max_body_bytes
    body: Any = None
    filenames: dict[str, str] = {}
    if operation.request_model is not None and operation.request_content_type == JSON_MEDIA_TYPE:
        raw = await read_json_body(request, limit)
        try:
            body = parse_json_body(operation.request_model, raw)
        except MLServiceError:
            log["request"] = loggable_invalid_body(raw)
            raise
    elif operation.request_model is not None:
        fields, filenames = await read_form_fields(request, limit)
        try:
            body = validate_form(operation.request_model, fields)
        except MLServiceError:
            log["request"] = loggable_invalid_body(fields)
            raise
    path_params = validate_path(operation, dict(request.path_params))
    return ApiRequest(operation, body, path_params, filenames)


def _endpoint_for(operation: Operation) -> Endpoint:
    inline = operation.operation_id in INLINE_OPERATIONS

    async def endpoint(request: Request) -> Response:
        resources: Resources = request.app.state.resources
        log: dict[str, Any] = request.state.ml_log
        log["endpoint"] = operation.path
        api_request = await _api_request(request, operation, resources, log)
        log["request"] = api_request.loggable_body()

        if operation.operation_id == "health_ready":
            result: Any = await resources.readiness()
        else:
            key = _cache_key(resources, api_request)
            if key is not None and (cached := await resources.cache.get(key)) is not None:
                return Response(cached, media_type=JSON_MEDIA_TYPE, headers={"X-Cache": "hit"})
            if inline:  # constant-time handlers: a thread hop would cost more than the work
                result = resources.api.handle(api_request)
            else:
                result = await anyio.to_thread.run_sync(
                    resources.api.handle, api_request, limiter=resources.engine_limiter
                )
            if key is not None and not isinstance(result, RawResult):
                content = result.model_dump_json().encode()
                await resources.cache.put(
                    key, request_hash(api_request.cache_body()), operation.path, content
                )
                log["response"] = result.model_dump(mode="json")
                return Response(content, media_type=JSON_MEDIA_TYPE, headers={"X-Cache": "miss"})

        if isinstance(result, RawResult):
            log["response"] = {"media_type": result.media_type, "bytes": len(result.content)}
            return Response(result.content, media_type=result.media_type)
        log["response"] = result.model_dump(mode="json")
        return Response(result.model_dump_json(), media_type=JSON_MEDIA_TYPE)

    endpoint.__name__ = operation.operation_id
    return endpoint


def _cache_key(resources: Resources, api_request: ApiRequest) -> str | None:
    if not resources.settings.cache_enabled:
        return None
    identity = resources.api.cache_identity(api_request)
    if identity is None:
        return None
    return cache_key(api_request.operation.path, api_request.cache_body(), identity)
