"""One contract operation, end to end: the same flow as the FastAPI backend's endpoint.

Read the body (size cap, media type), validate it with the shared pydantic model, look
in the shared cache, call the engine through the framework-free ``Api``, answer. What an
operation means lives in backends.core.api, shared by both backends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest, HttpResponse

from backends.core.api.dispatch import ApiRequest, RawResult
from backends.core.api.validation import parse_json_body, validate_form, validate_path
from backends.core.errors import MLServiceError
from backends.core.persistence.cache_keys import cache_key, request_hash
from backends.core.persistence.sanitize import loggable_invalid_body
from backends.django_service.mlapi.context import RequestContext, attach_context, context_of
from backends.django_service.mlapi.runtime import Runtime, get_runtime
from backends.django_service.mlapi.services.request_body import read_form_fields, read_json_body
from shared_schemas.operations import JSON, Operation

JSON_MEDIA_TYPE = "application/json"


def run_operation(
    operation: Operation, request: HttpRequest, path_params: Mapping[str, str]
) -> HttpResponse:
    """Serve one operation; domain errors propagate to the one exception handler."""
    runtime = get_runtime()
    context = context_of(request) or attach_context(request)
    context.endpoint = operation.path
    api_request = _api_request(request, operation, runtime, context, path_params)
    context.request_payload = api_request.loggable_body()

    if operation.operation_id == "health_ready":
        result: Any = runtime.readiness()
    else:
        key = _cache_key(runtime, api_request)
        if key is not None and (cached := runtime.cache.get(key)) is not None:
            return _json(cached, cache="hit")
        result = runtime.api.handle(api_request)
        if key is not None and not isinstance(result, RawResult):
            content = result.model_dump_json().encode()
            runtime.cache.put(key, request_hash(api_request.cache_body()), operation.path, content)
            context.response_payload = result
            return _json(content, cache="miss")

    if isinstance(result, RawResult):
        context.response_payload = {"media_type": result.media_type, "bytes": len(result.content)}
        return HttpResponse(result.content, content_type=result.media_type)
    context.response_payload = result  # dumped by the log writer, after the response is sent
    return _json(result.model_dump_json().encode())


def _api_request(
    request: HttpRequest,
    operation: Operation,
    runtime: Runtime,
    context: RequestContext,
    path_params: Mapping[str, str],
) -> ApiRequest:
    limit = runtime.settings.max_body_bytes
    body: Any = None
    filenames: dict[str, str] = {}
    if operation.request_model is not None and operation.request_content_type == JSON:
        raw = read_json_body(request, limit)
        try:
            body = parse_json_body(operation.request_model, raw)
        except MLServiceError:
            context.request_payload = loggable_invalid_body(raw)
            raise
    elif operation.request_model is not None:
        fields, filenames = read_form_fields(request, limit)
        try:
            body = validate_form(operation.request_model, fields)
        except MLServiceError:
            context.request_payload = loggable_invalid_body(fields)
            raise
    validated_path = validate_path(operation, path_params)
    return ApiRequest(operation, body, validated_path, filenames)


def _cache_key(runtime: Runtime, api_request: ApiRequest) -> str | None:
    if not runtime.settings.cache_enabled:
        return None
    identity = runtime.api.cache_identity(api_request)
    if identity is None:
        return None
    return cache_key(api_request.operation.path, api_request.cache_body(), identity)


def _json(content: bytes, cache: str | None = None) -> HttpResponse:
    response = HttpResponse(content, content_type=JSON_MEDIA_TYPE)
    if cache is not None:
        response["X-Cache"] = cache
    return response
