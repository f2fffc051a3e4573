"""Per-request state shared by the middleware, the operation endpoint and the error handlers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from django.http import HttpRequest

from backends.core.persistence.log_notes import LogNotes
from shared_schemas import request_meta

_ATTRIBUTE = "_mlapi_context"


def meta_key(header: str) -> str:
    """The WSGI environ key of a request header (``request.headers`` reads the same key)."""
    return "HTTP_" + header.upper().replace("-", "_")


# read from META: request.headers builds a dict of every header on first use, which a
# request that leaves no log row (/health, /live) never needs
_REQUEST_ID_KEY = meta_key(request_meta.REQUEST_ID_HEADER)


@dataclass
class RequestContext:
    request_id: str
    started: float = field(default_factory=time.perf_counter)
    notes: LogNotes = field(default_factory=LogNotes)  # what the log row will say


def attach_context(request: HttpRequest) -> RequestContext:
    given = request.META.get(_REQUEST_ID_KEY)
    context = RequestContext(request_id=request_meta.request_id_from(given))
    setattr(request, _ATTRIBUTE, context)
    return context


def context_of(request: HttpRequest | None) -> RequestContext | None:
    """The request's context; DRF's Request proxies attribute reads to the HttpRequest."""
    context = getattr(request, _ATTRIBUTE, None) if request is not None else None
    return context if isinstance(context, RequestContext) else None


def request_id_of(request: HttpRequest | None) -> str:
    context = context_of(request)
    return context.request_id if context is not None else request_meta.new_request_id()
