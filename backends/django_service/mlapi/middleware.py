"""Request ids, the error-shape catch-all, and one log record per request.

Outermost middleware: whatever answered below (a DRF view, Django's 404, admin, another
middleware), a non-2xx leaves here in the error shape with the request's id. The log
record is submitted when the server closes the response, i.e. after the body was sent;
building it (payload dumps, sanitising) happens in the writer thread.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from pydantic import BaseModel

from backends.core.persistence.records import RequestRecord
from backends.django_service.mlapi import runtime
from backends.django_service.mlapi.context import REQUEST_ID_HEADER, RequestContext, attach_context
from backends.django_service.mlapi.errors import is_shaped, reshape, response_for_exception

UNLOGGED_PATHS = frozenset({"/health", "/live", "/ready", "/openapi.json", "/docs", "/redoc"})
UNLOGGED_PREFIXES = ("/admin/", "/static/")
INT4_MAX = 2**31 - 1


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.service_name: str = settings.SERVICE.service_name
        self.logging: bool = settings.SERVICE.request_logging

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        context = attach_context(request)
        try:
            response = self.get_response(request)
        except Exception as exc:  # Django converts exceptions below us; this is the last net
            response = response_for_exception(request, exc)
        if response.status_code >= 400 and not is_shaped(response):
            response = reshape(request, response)
        response[REQUEST_ID_HEADER] = context.request_id
        if isinstance(response, HttpResponse) and not response.has_header("Content-Length"):
            # else gunicorn sends chunked (Django's CommonMiddleware, which set it, is admin-only)
            response["Content-Length"] = str(len(response.content))
        if self.logging and not _unlogged(request.path):
            closers: list[Callable[[], None]] = response._resource_closers  # type: ignore[attr-defined]
            closers.append(partial(self._submit, request, context, response.status_code))
        return response

    def _submit(self, request: HttpRequest, context: RequestContext, status: int) -> None:
        current = runtime.current_runtime()
        if current is None or current.writer is None:
            return
        headers = request.headers
        values: dict[str, Any] = {
            "service_name": self.service_name,
            "endpoint": (context.endpoint or request.path)[:255],
            "method": request.method or "",
            "status_code": status,
            "duration_ms": (time.perf_counter() - context.started) * 1000,
            "request_id": context.request_id,
            "request_payload": context.request_payload,
            "response_payload": context.response_payload,
            "error_message": context.error,
            "user_id": headers.get("X-User-ID"),
            "organization_id": headers.get("X-Organization-ID"),
            "credits_charged": _int_or_zero(headers.get("X-Credits-Charged")),
            "ip_address": _client_ip(request),
            "user_agent": headers.get("User-Agent"),
        }
        current.writer.submit(partial(_build_record, values))


def _build_record(values: dict[str, Any]) -> RequestRecord:
    """Runs in the writer thread: dump the response model, then sanitise (RequestRecord.build)."""
    response = values.get("response_payload")
    if isinstance(response, BaseModel):
        values["response_payload"] = response.model_dump(mode="json")
    return RequestRecord.build(**values)


def _unlogged(path: str) -> bool:
    return path in UNLOGGED_PATHS or path.startswith(UNLOGGED_PREFIXES)


def _int_or_zero(value: str | None) -> int:
    """A header's count, clamped to the integer column (one huge value must not fail a batch)."""
    try:
        return min(max(0, int(value or 0)), INT4_MAX)
    except ValueError:
        return 0


def _client_ip(request: HttpRequest) -> str | None:
    """The gateway's X-Forwarded-For first hop, else the socket peer; None if not an IP."""
    candidate = (request.headers.get("X-Forwarded-For") or "").split(",")[0].strip()
    if not candidate:
        candidate = str(request.META.get("REMOTE_ADDR") or "")
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None
