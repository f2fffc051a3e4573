"""Test settings: the same as base; the database comes from DATABASE_URL of the fixtures."""

from backends.django_service.config.settings.base import *  # noqa: F403

DEBUG = False
