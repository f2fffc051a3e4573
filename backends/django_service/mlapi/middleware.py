"""Request ids, the error-shape catch-all, the credits charged, one log record per request.

Outermost middleware: whatever answered below (a DRF view, Django's 404, admin, another
middleware), a non-2xx leaves here in the error shape with the request's id. The log
record is submitted when the server closes the response, i.e. after the body was sent;
building it (payload dumps, sanitising) happens in the writer thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from backends.core.metering.meter import Meter
from backends.core.persistence.log_notes import RequestFacts, request_record
from backends.django_service.mlapi import runtime
from backends.django_service.mlapi.context import RequestContext, attach_context, meta_key
from backends.django_service.mlapi.errors import is_shaped, reshape, response_for_exception
from shared_schemas import request_meta

_GATEWAY_SECRET_KEY = meta_key(request_meta.GATEWAY_SECRET_HEADER)


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.service_name: str = settings.SERVICE.service_name
        self.logging: bool = settings.SERVICE.request_logging
        self.gateway_secret: str = settings.SERVICE.gateway_secret
        self.meter = Meter(settings.CREDITS)  # a bad price table fails at start-up

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        context = attach_context(request)
        from_gateway = request_meta.from_gateway(
            request.META.get(_GATEWAY_SECRET_KEY), self.gateway_secret
        )
        # only a gateway request can be a shadow copy: the others never build request.headers
        context.notes.shadow = from_gateway and request_meta.is_shadow(True, request.headers)
        try:
            response = self.get_response(request)
        except Exception as exc:  # Django converts exceptions below us; this is the last net
            response = response_for_exception(request, exc)
        if response.status_code >= 400 and not is_shaped(response):
            response = reshape(request, response)
        response[request_meta.REQUEST_ID_HEADER] = context.request_id
        credits = context.notes.settle(self.meter, response.status_code)
        response[request_meta.CREDITS_HEADER] = str(credits)
        if isinstance(response, HttpResponse) and not response.has_header("Content-Length"):
            # else gunicorn sends chunked (Django's CommonMiddleware, which set it, is admin-only)
            response["Content-Length"] = str(len(response.content))
        if self.logging and request_meta.is_logged(request.path):
            closers: list[Callable[[], None]] = response._resource_closers  # type: ignore[attr-defined]
            closers.append(
                partial(self._submit, request, context, response.status_code, from_gateway)
            )
        return response

    def _submit(
        self, request: HttpRequest, context: RequestContext, status: int, from_gateway: bool
    ) -> None:
        """Runs when the server closes the response; the row is built in the writer thread."""
        current = runtime.current_runtime()
        if current is None or current.writer is None:
            return
        facts = RequestFacts(
            method=request.method or "",
            path=request.path,
            status=status,
            duration_ms=(time.perf_counter() - context.started) * 1000,
            request_id=context.request_id,
            headers=request.headers,
            peer=str(request.META.get("REMOTE_ADDR") or "") or None,
            from_gateway=from_gateway,
        )
        current.writer.submit(partial(request_record, self.service_name, context.notes, facts))
