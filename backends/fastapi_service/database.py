"""The asyncpg pool (owned by the app lifespan) and the start-up schema check."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from backends.core.persistence import sql
from backends.core.persistence.migrations import (
    MIGRATIONS_APP,
    pending_message,
    pending_migrations,
)


class SchemaNotReady(RuntimeError):
    """Raised at start-up when Django's migrations have not all been applied."""


async def _init_connection(conn: asyncpg.Connection[Any]) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection[Any]) -> None:
    """Hand a connection back as it is: this backend changes no session state.

    asyncpg's default reset sends ``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL`` on every release: a second round trip for each cache read (one per
    cacheable request that misses Redis) and each log batch. Nothing here takes advisory
    locks, opens cursors outside a transaction, LISTENs or SETs; a transaction left open
    is still rolled back by asyncpg before this is called.
    """


async def create_pool(database_url: str, size: int) -> asyncpg.Pool[Any]:
    return await asyncpg.create_pool(
        database_url, min_size=1, max_size=size, init=_init_connection, reset=_keep_session,
        command_timeout=30,
    )  # fmt: skip


async def ensure_schema(pool: asyncpg.Pool[Any]) -> None:
    """Refuse to start, with the command to run, when migrations are pending."""
    try:
        rows = await pool.fetch(sql.APPLIED_MIGRATIONS, MIGRATIONS_APP)
    except asyncpg.UndefinedTableError:
        rows = []
    pending = pending_migrations({row["name"] for row in rows})
    if pending:
        raise SchemaNotReady(pending_message(pending))
