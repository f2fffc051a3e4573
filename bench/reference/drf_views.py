"""The bare reference's APIViews (imported once ``drf_app`` has configured Django)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.http import HttpResponse
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bench.reference.answer import EMBED_PATH, cached_answer


class HealthView(APIView):
    def get(self, request: Request) -> Response:
        now = datetime.now(UTC)
        return Response(
            {"status": "ok", "service": "ml-api", "backend": "drf-bare", "timestamp": now}
        )


class LiveView(APIView):
    def get(self, request: Request) -> Response:
        return Response({"live": True, "timestamp": datetime.now(UTC)})


class ReadyView(APIView):
    def get(self, request: Request) -> Response:
        return Response({"ready": True, "status": "ok", "checks": {}})


class EmbedView(APIView):
    """The floor of a cached answer: DRF parses the JSON body, the bytes go back as they are."""

    def post(self, request: Request) -> HttpResponse:
        request.data  # noqa: B018 - parsing the body is the point
        return HttpResponse(cached_answer(), content_type="application/json")


urlpatterns = [
    path("health", HealthView.as_view()),
    path("live", LiveView.as_view()),
    path("ready", ReadyView.as_view()),
    path(EMBED_PATH.lstrip("/"), EmbedView.as_view()),
]
