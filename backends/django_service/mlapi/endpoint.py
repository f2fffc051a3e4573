"""One contract operation served by Django: only the I/O around the shared request flow.

Read the body, call the cache, run the handler, answer; what each step means lives in
``backends.core.api.flow.RequestFlow``, shared with the FastAPI backend.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from concurrent.futures import CancelledError

from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse

from backends.core.api.api_request import ApiResult
from backends.core.api.event_stream import EVENT_STREAM_HEADERS
from backends.core.api.flow import Answer
from backends.core.api.metrics_page import server_timing
from backends.core.inference.timing import CLIENT_CLOSED, collect_timing
from backends.django_service.config.service_settings import DjangoServiceSettings
from backends.django_service.mlapi.body import read_body
from backends.django_service.mlapi.client_socket import client_gone_check
from backends.django_service.mlapi.context import attach_context, context_of
from backends.django_service.mlapi.runtime import get_runtime
from shared_schemas.generation import EVENT_STREAM_MEDIA_TYPE
from shared_schemas.operations import Operation


def run_operation(
    operation: Operation, request: HttpRequest, path_params: Mapping[str, str]
) -> HttpResponseBase:
    """Serve one operation; domain errors propagate to the one exception handler."""
    started = time.perf_counter()
    runtime = get_runtime()
    context = context_of(request) or attach_context(request)
    notes = context.notes
    flow = runtime.flow
    settings = runtime.settings
    body = read_body(request, operation, settings.max_body_bytes, settings.body_timeout_s)
    prepared = flow.prepare(operation, body, path_params, notes)
    result: ApiResult
    perturb = _perturbed_field(operation, settings)
    if prepared.cache_key is not None:
        cached = runtime.cache.get(prepared.cache_key)
        runtime.metrics.cache_lookup(hit=bool(cached))
        if cached:
            return _response(flow.cached(prepared, cached, notes), perturb=perturb)
    with collect_timing(client_gone_check(request)) as timing:
        try:
            result = runtime.readiness() if operation.readiness else flow.run(prepared.api_request)
        except CancelledError:
            if timing.abandoned:  # its client left while a model call waited: dropped
                return HttpResponse(status=CLIENT_CLOSED)  # nobody is left to read it
            raise
    answer = flow.finish(prepared, result, notes)
    if answer.stream is not None:
        # gunicorn's sync worker writes each event as the generator yields it (chunked);
        # the worker is busy until the stream ends, as it is for a whole generation
        return StreamingHttpResponse(
            answer.stream.encoded(context.request_id),
            content_type=EVENT_STREAM_MEDIA_TYPE,
            headers=EVENT_STREAM_HEADERS,
        )
    if (entry := answer.cache_entry) is not None:
        runtime.cache.put(entry.key, entry.request_hash, entry.endpoint, entry.body)
    timing_header = server_timing(timing, time.perf_counter() - started)
    return _response(answer, timing_header, perturb)


def _perturbed_field(operation: Operation, settings: DjangoServiceSettings) -> str | None:
    """TEST ONLY (ML_SERVICE_TEST_PERTURB): the field of this operation's answer to change."""
    perturbed = settings.perturbed_field  # parsed once, with the settings
    if perturbed is None or perturbed[0] != operation.operation_id:
        return None
    return perturbed[1]


def _perturb(content: bytes, field: str) -> bytes:
    body = json.loads(content)
    value = body.get(field)
    if isinstance(value, bool):
        body[field] = not value
    elif isinstance(value, int | float):
        body[field] = value + 1
    elif isinstance(value, str):
        body[field] = value + " (perturbed)"
    return json.dumps(body).encode()


def _response(
    answer: Answer, timing: str | None = None, perturb: str | None = None
) -> HttpResponse:
    content = answer.content
    if perturb is not None and answer.media_type.startswith("application/json"):
        content = _perturb(content, perturb)
    response = HttpResponse(content, content_type=answer.media_type)
    if answer.x_cache is not None:
        response["X-Cache"] = answer.x_cache
    if timing is not None:
        response["Server-Timing"] = timing
    return response
