"""API routes: the contract's 32 operations (exact paths, no trailing slashes), docs, /metrics."""

from __future__ import annotations

import re

from django.urls import URLPattern, path

from backends.django_service.mlapi.views import (
    MetricsView,
    OpenApiView,
    RedocView,
    SwaggerDocsView,
    operation_views,
)
from shared_schemas import request_meta

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def django_route(contract_path: str) -> str:
    """`/api/v1/rag/collection/{name}` -> `api/v1/rag/collection/<str:name>`."""
    return _PLACEHOLDER.sub(r"<str:\1>", contract_path.lstrip("/"))


def api_urlpatterns() -> list[URLPattern]:
    patterns = [
        path(django_route(contract_path), view.as_view(), name=view.__name__)
        for contract_path, view in operation_views().items()
    ]
    patterns += [
        path("openapi.json", OpenApiView.as_view(), name="openapi"),
        path("docs", SwaggerDocsView.as_view(), name="docs"),
        path("redoc", RedocView.as_view(), name="redoc"),
        path(request_meta.METRICS_PATH.lstrip("/"), MetricsView.as_view(), name="metrics"),
    ]
    return patterns


urlpatterns = api_urlpatterns()
