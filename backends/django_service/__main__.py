"""`python -m backends.django_service`: serve with gunicorn sync workers (not runserver)."""

from __future__ import annotations

import sys

import psycopg

from backends.core.persistence import sql
from backends.core.persistence.migrations import (
    MIGRATIONS_APP,
    pending_message,
    pending_migrations,
)
from backends.django_service.config.service_settings import DjangoServiceSettings
from backends.django_service.server import serve


def schema_problem(service: DjangoServiceSettings) -> str | None:
    """Why the database cannot be served yet (unreachable, migrations pending), or None."""
    try:
        with psycopg.connect(
            service.database_url, connect_timeout=service.db_connect_timeout_s
        ) as conn:
            try:
                rows = conn.execute(sql.as_pyformat(sql.APPLIED_MIGRATIONS), (MIGRATIONS_APP,))
                applied = {row[0] for row in rows}
            except psycopg.errors.UndefinedTable:
                applied = set()
    except psycopg.OperationalError as exc:
        return f"cannot connect to DATABASE_URL: {exc}".strip()
    pending = pending_migrations(applied)
    return pending_message(pending) if pending else None


def main() -> None:
    service = DjangoServiceSettings()
    if service.require_migrations and (problem := schema_problem(service)) is not None:
        sys.exit(f"django backend not started: {problem}")
    serve(service)


if __name__ == "__main__":
    main()
