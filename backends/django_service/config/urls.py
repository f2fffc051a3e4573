"""URL routes of the Django backend; every error handler answers in the one error shape."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.staticfiles.views import serve
from django.urls import path, re_path

from backends.django_service.mlapi.urls import urlpatterns as api_urlpatterns

urlpatterns = [
    # the API's routes at the top level, not include()d: one resolver level per request
    *api_urlpatterns,
    path("admin/", admin.site.urls),
    # The admin's own CSS/JS, served without collectstatic: operators only, low traffic.
    re_path(r"^static/(?P<path>.+)$", serve, {"insecure": True}),
]

handler400 = "backends.django_service.mlapi.errors.handler400"
handler403 = "backends.django_service.mlapi.errors.handler403"
handler404 = "backends.django_service.mlapi.errors.handler404"
handler500 = "backends.django_service.mlapi.errors.handler500"
