"""DRF views, one per contract path, generated from shared_schemas.operations.

Thin: each method hands the request to ``endpoint.run_operation``. One class per
path (not per operation) so a 405 lists every method the path has in ``Allow``. DRF's
parsers, authentication, throttling and content negotiation are off: bodies are
validated by the shared pydantic models and every error goes through ``errors``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

from django.http import HttpResponse, HttpResponseBase
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from backends.core.api import metrics_page
from backends.django_service.mlapi.docs_pages import redoc_html, swagger_ui_html
from backends.django_service.mlapi.endpoint import run_operation
from backends.django_service.mlapi.negotiation import JsonOnlyNegotiation
from backends.django_service.mlapi.runtime import get_runtime
from shared_schemas.operations import OPERATIONS, Operation

CONTRACT_PATH = Path(__file__).resolve().parents[3] / "contract" / "openapi.json"
ViewMethod = Callable[..., HttpResponseBase]


class BaseView(APIView):
    """Only the methods a subclass lists; no DRF parsing, auth, throttling or negotiation."""

    authentication_classes = ()
    permission_classes = ()
    throttle_classes = ()
    parser_classes = ()
    renderer_classes = (JSONRenderer,)
    content_negotiation_class = JsonOnlyNegotiation
    metadata_class = None
    http_method_names = ("get",)


class OperationView(BaseView):
    """Base of the generated views; ``operations`` maps a lower-case method to its operation."""

    operations: ClassVar[dict[str, Operation]] = {}


def _method_for(operation: Operation) -> ViewMethod:
    def handle(self: OperationView, request: Request, **path_params: str) -> HttpResponseBase:
        return run_operation(operation, request._request, path_params)

    handle.__name__ = operation.method.lower()
    handle.__doc__ = operation.summary
    return handle


@cache
def operation_views() -> dict[str, type[OperationView]]:
    """Contract path -> its generated view class."""
    by_path: dict[str, list[Operation]] = defaultdict(list)
    for operation in OPERATIONS:
        by_path[operation.path].append(operation)
    views: dict[str, type[OperationView]] = {}
    for path, operations in by_path.items():
        methods = {op.method.lower(): op for op in operations}
        attributes: dict[str, Any] = {name: _method_for(op) for name, op in methods.items()}
        attributes |= {
            "operations": methods,
            "http_method_names": tuple(methods),
            "__doc__": "; ".join(op.summary for op in operations),
            "__module__": __name__,
        }
        name = "".join(part.capitalize() for part in operations[0].operation_id.split("_"))
        views[path] = type(f"{name}View", (OperationView,), attributes)
    return views


@cache
def _contract_bytes() -> bytes:
    return CONTRACT_PATH.read_bytes()


class OpenApiView(BaseView):
    """The committed contract: every backend serves the same document."""

    def get(self, request: Request) -> HttpResponse:
        return HttpResponse(_contract_bytes(), content_type="application/json")


class MetricsView(BaseView):
    """This worker process's Prometheus metrics (each worker has its own runtime)."""

    def get(self, request: Request) -> HttpResponse:
        body = get_runtime().metrics.render()
        return HttpResponse(body, content_type=metrics_page.CONTENT_TYPE)


class SwaggerDocsView(BaseView):
    def get(self, request: Request) -> HttpResponse:
        return HttpResponse(swagger_ui_html("/openapi.json", "ML API - docs"))


class RedocView(BaseView):
    def get(self, request: Request) -> HttpResponse:
        return HttpResponse(redoc_html("/openapi.json", "ML API - ReDoc"))
