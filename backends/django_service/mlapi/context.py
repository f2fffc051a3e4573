"""Per-request state shared by the middleware, the operation service and the error handlers."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest

REQUEST_ID_HEADER = "X-Request-ID"
_ATTRIBUTE = "_mlapi_context"


@dataclass
class RequestContext:
    """What one request leaves for its log row (filled in as the request is served)."""

    request_id: str
    started: float = field(default_factory=time.perf_counter)
    endpoint: str | None = None  # the contract path (a template for path parameters)
    request_payload: Any = None  # loggable body: validated model dump, or raw JSON if invalid
    response_payload: Any = None  # a pydantic model (dumped later, off the response path)
    error: str | None = None


def new_request_id(given: str | None) -> str:
    """The caller's X-Request-ID when it is sane, else a fresh uuid4."""
    if given and len(given) <= 128 and given.isprintable():
        return given
    return str(uuid.uuid4())


def attach_context(request: HttpRequest) -> RequestContext:
    context = RequestContext(request_id=new_request_id(request.headers.get(REQUEST_ID_HEADER)))
    setattr(request, _ATTRIBUTE, context)
    return context


def context_of(request: HttpRequest | None) -> RequestContext | None:
    """The request's context; DRF's Request proxies attribute reads to the HttpRequest."""
    context = getattr(request, _ATTRIBUTE, None) if request is not None else None
    return context if isinstance(context, RequestContext) else None


def request_id_of(request: HttpRequest | None) -> str:
    context = context_of(request)
    return context.request_id if context is not None else str(uuid.uuid4())
