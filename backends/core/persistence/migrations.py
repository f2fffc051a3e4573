"""Which schema migrations exist (Django owns them) and whether a database has them all."""

from __future__ import annotations

from pathlib import Path

MIGRATIONS_APP = "mlapi"
_MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "django_service" / "mlapi" / "migrations"


def expected_migrations() -> set[str]:
    """Names of the migration files shipped with this checkout."""
    return {p.stem for p in _MIGRATIONS_DIR.glob("[0-9]*.py")}


def pending_migrations(applied: set[str]) -> list[str]:
    """Shipped migrations missing from the database, sorted."""
    return sorted(expected_migrations() - applied)


def pending_message(pending: list[str]) -> str:
    return (
        f"database schema is not up to date: {len(pending)} migration(s) pending"
        f" ({', '.join(pending)}). Apply them with "
        "`uv run python -m backends.django_service.manage migrate` (make run does it)."
    )
