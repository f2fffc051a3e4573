"""One contract operation served by Django: only the I/O around the shared request flow.

Read the body, call the cache, run the handler, answer; what each step means lives in
``backends.core.api.flow.RequestFlow``, shared with the FastAPI backend.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.http import HttpRequest, HttpResponse

from backends.core.api.api_request import ApiResult
from backends.core.api.flow import Answer
from backends.django_service.mlapi.body import read_body
from backends.django_service.mlapi.context import attach_context, context_of
from backends.django_service.mlapi.runtime import get_runtime
from shared_schemas.operations import Operation


def run_operation(
    operation: Operation, request: HttpRequest, path_params: Mapping[str, str]
) -> HttpResponse:
    """Serve one operation; domain errors propagate to the one exception handler."""
    runtime = get_runtime()
    notes = (context_of(request) or attach_context(request)).notes
    flow = runtime.flow
    settings = runtime.settings
    body = read_body(request, operation, settings.max_body_bytes, settings.body_timeout_s)
    prepared = flow.prepare(operation, body, path_params, notes)
    result: ApiResult
    if operation.readiness:
        result = runtime.readiness()
    elif prepared.cache_key is not None and (cached := runtime.cache.get(prepared.cache_key)):
        return _response(flow.cached(cached))
    else:
        result = flow.run(prepared.api_request)
    answer = flow.finish(prepared, result, notes)
    if (entry := answer.cache_entry) is not None:
        runtime.cache.put(entry.key, entry.request_hash, entry.endpoint, entry.body)
    return _response(answer)


def _response(answer: Answer) -> HttpResponse:
    response = HttpResponse(answer.content, content_type=answer.media_type)
    if answer.x_cache is not None:
        response["X-Cache"] = answer.x_cache
    return response
