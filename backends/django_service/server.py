"""Gunicorn (threaded WSGI workers) for the Django backend: options and worker hooks.

WSGI, not ASGI: DRF's ASGI path with sync views is 5-10x slower here. Threaded workers
(gthread), not sync ones: a sync worker serves one request at a time, so its model
batches held one text; with DJANGO_THREADS request threads, the requests waiting in one
worker share its inference runtime's batches. The app is not preloaded, so each worker
imports Django and builds its engine after fork (nothing with a socket or a thread
crosses a fork); each worker flushes its request log on exit.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from gunicorn.app.base import BaseApplication

from backends.django_service.config.service_settings import DjangoServiceSettings
from shared_schemas.collector import tune_collector

SETTINGS_MODULE = "backends.django_service.config.settings.base"
THREADED_WORKER = "backends.django_service.gthread_worker.BatchAcceptThreadWorker"
logger = logging.getLogger(__name__)


def post_worker_init(worker: Any) -> None:
    """In each worker, after Django is loaded: open the engine, Redis and the log writer,
    then tune the collector (what the app and the engine made is frozen)."""
    from backends.django_service.mlapi.runtime import start_runtime

    start_runtime()
    tune_collector()


def worker_exit(server: Any, worker: Any) -> None:
    """In each exiting worker: flush queued request logs and close connections."""
    from backends.django_service.mlapi.runtime import stop_runtime

    stop_runtime()


def gunicorn_options(service: DjangoServiceSettings) -> dict[str, Any]:
    return {
        "bind": [f"{service.host}:{service.port}"],
        "workers": service.workers,
        # gthread, accepting every waiting connection per turn of its loop (not one)
        "worker_class": THREADED_WORKER if service.threads > 1 else "sync",
        "threads": service.threads,
        "preload_app": False,
        "timeout": service.worker_timeout_s,
        "graceful_timeout": service.graceful_timeout_s,
        "keepalive": service.keepalive_s,
        "limit_request_line": 8190,  # gunicorn's maximum; its own 400s are plain text
        "accesslog": None,  # every request is in ml_service_requests
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "mlapi-django",
        # one control socket per user by default: parallel servers (tests) would collide
        "control_socket_disable": True,
        "post_worker_init": post_worker_init,
        "worker_exit": worker_exit,
    }


class DjangoServer(BaseApplication):  # type: ignore[misc]
    """Gunicorn application whose options come from DjangoServiceSettings, not a CLI."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for name, value in self.options.items():
            self.cfg.set(name, value)

    def load(self) -> Any:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
        from backends.django_service.config.wsgi import application

        return application


def serve(service: DjangoServiceSettings) -> None:
    """Run gunicorn in the foreground until SIGTERM/SIGINT (graceful: logs are flushed)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    DjangoServer(gunicorn_options(service)).run()
