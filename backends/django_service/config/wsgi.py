"""WSGI entry point (gunicorn sync workers: DRF's ASGI path is 5-10x slower here)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backends.django_service.config.settings.base")
application = get_wsgi_application()
