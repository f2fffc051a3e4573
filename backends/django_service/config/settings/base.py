"""Django settings, built from DjangoServiceSettings (nothing else reads the environment)."""

from __future__ import annotations

from backends.core.metering.prices import CreditSettings
from backends.core.settings import EngineSettings
from backends.django_service.config.service_settings import (
    DjangoServiceSettings,
    database_from_url,
)

SERVICE = DjangoServiceSettings()
# The engine shares the database and Redis of the service (one source for both URLs).
ENGINE = EngineSettings(database_url=SERVICE.database_url, redis_url=SERVICE.redis_url)
CREDITS = CreditSettings()  # the price table, the same for every backend

SECRET_KEY = SERVICE.secret_key.get_secret_value()
DEBUG = SERVICE.debug
ALLOWED_HOSTS = SERVICE.allowed_hosts
ROOT_URLCONF = "backends.django_service.config.urls"
WSGI_APPLICATION = "backends.django_service.config.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"

# Paths are exactly the contract's: no redirect from /health/ to /health.
APPEND_SLASH = False
# Our own 413 check runs first (in the error shape); this only keeps Django from refusing
# a JSON body the contract allows (35 M base64 chars) before that check. Multipart bodies
# (25 MB audio) are parsed by mlapi.multipart_form, not by Django.
DATA_UPLOAD_MAX_MEMORY_SIZE = SERVICE.max_body_bytes

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "backends.django_service.mlapi",
]

MIDDLEWARE = [
    # outermost: request id, the error-shape catch-all and the request log cover everything
    "backends.django_service.mlapi.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # sessions, auth, messages: for /admin/ only (the API needs none of them)
    "backends.django_service.mlapi.admin_middleware.AdminOnlyMiddleware",
]
# the admin checks for those three in MIDDLEWARE; AdminOnlyMiddleware runs them
SILENCED_SYSTEM_CHECKS = ["admin.E408", "admin.E409", "admin.E410"]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {"default": database_from_url(SERVICE.database_url, SERVICE.db_connect_timeout_s)}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_THROTTLE_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "UNAUTHENTICATED_TOKEN": None,
    # bodies are read and validated by the shared pydantic models, never by DRF parsers
    "DEFAULT_PARSER_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": (
        "backends.django_service.mlapi.negotiation.JsonOnlyNegotiation"
    ),
    "EXCEPTION_HANDLER": "backends.django_service.mlapi.errors.drf_exception_handler",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "unexpected_errors_only": {
            "()": "backends.django_service.mlapi.log_filters.UnexpectedErrorsOnly",
        }
    },
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "INFO"},
    # every 4xx (and a 503 for a missing provider) is an answer, already in the request
    # log: no log line each; real 500s keep their traceback
    "loggers": {
        "django.request": {"level": "ERROR", "filters": ["unexpected_errors_only"]},
        # a line per malformed upload otherwise (it is a 400 in the request log already)
        "python_multipart": {"level": "ERROR"},
    },
}
