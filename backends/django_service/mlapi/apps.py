from __future__ import annotations

from django.apps import AppConfig


class MlapiConfig(AppConfig):
    name = "backends.django_service.mlapi"
    label = "mlapi"
    verbose_name = "ML API"
