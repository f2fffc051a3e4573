"""Session, auth, messages (and common) middleware for the admin only.

The API needs none of them, and on every request they cost about a third of a trivial
endpoint's time in a sync worker. Django's admin system checks look for them in
MIDDLEWARE, so those checks are silenced in the settings: they are here instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.handlers.exception import convert_exception_to_response
from django.http import HttpRequest, HttpResponseBase
from django.utils.module_loading import import_string

ADMIN_PREFIX = "/admin/"
ADMIN_MIDDLEWARE = (
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
)

GetResponse = Callable[[HttpRequest], Any]  # Django types it sync-or-async


class AdminOnlyMiddleware:
    """Routes /admin/ requests through ADMIN_MIDDLEWARE, everything else straight on."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        chain: GetResponse = get_response
        for path in reversed(ADMIN_MIDDLEWARE):
            # wrapped as Django wraps each MIDDLEWARE entry: exceptions become responses
            chain = convert_exception_to_response(import_string(path)(chain))
        self.admin_chain = chain

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        chain = self.admin_chain if request.path.startswith(ADMIN_PREFIX) else self.get_response
        response: HttpResponseBase = chain(request)
        return response
