"""A bare Django REST framework project: APIViews returning Responses, no middleware.

API-only DRF settings (JSON renderer, no authentication), served by the Django backend's
own gunicorn options (its worker class, DJANGO_WORKERS x DJANGO_THREADS, timeouts) without
its worker hooks.
The views live in ``drf_views``: DRF reads its settings when its classes are defined.
"""

from __future__ import annotations

from typing import Any

from backends.django_service.config.service_settings import DjangoServiceSettings
from backends.django_service.server import DjangoServer, gunicorn_options

SETTINGS: dict[str, Any] = {
    "DEBUG": False,
    "SECRET_KEY": "bench-reference-only",
    "ALLOWED_HOSTS": ["*"],
    "ROOT_URLCONF": "bench.reference.drf_views",
    "INSTALLED_APPS": ["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"],
    "MIDDLEWARE": [],
    "DATABASES": {},
    "USE_TZ": True,
    "REST_FRAMEWORK": {
        "DEFAULT_AUTHENTICATION_CLASSES": [],
        "UNAUTHENTICATED_USER": None,
        "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    },
}


class BareDjangoServer(DjangoServer):
    def load(self) -> Any:
        import django
        from django.conf import settings
        from django.core.wsgi import get_wsgi_application

        if not settings.configured:
            settings.configure(**SETTINGS)
        django.setup()
        return get_wsgi_application()


def main() -> None:
    options = gunicorn_options(DjangoServiceSettings())
    for hook in ("post_worker_init", "worker_exit"):  # those open and close our runtime
        options.pop(hook)
    options["proc_name"] = "mlapi-drf-bare"
    BareDjangoServer(options).run()


if __name__ == "__main__":
    main()
