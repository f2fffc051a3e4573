"""The asyncpg pool (owned by the app lifespan) and the start-up schema check."""

from __future__ import annotations

import ipaddress
import json
from functools import lru_cache
from typing import Any

import asyncpg

from backends.core.persistence import sql
from backends.core.persistence.migrations import (
    MIGRATIONS_APP,
    pending_message,
    pending_migrations,
)
from backends.core.persistence.sanitize import EncodedJson


class SchemaNotReady(RuntimeError):
    """Raised at start-up when Django's migrations have not all been applied."""


# jsonb's binary form is a version byte (1) and the JSON text. Binary, not asyncpg's text
# format: the request log's COPY (binary) needs a binary encoder for every column.
_JSONB_VERSION = b"\x01"


def _encode_jsonb(value: Any) -> bytes:
    if type(value) is EncodedJson:  # a log payload: its text is already made
        return _JSONB_VERSION + value.text.encode()
    return _JSONB_VERSION + json.dumps(value).encode()


def _decode_jsonb(data: bytes) -> Any:
    if data[:1] != _JSONB_VERSION:
        raise ValueError(f"unknown jsonb binary version {data[:1]!r}")
    return json.loads(data[1:])


IPValue = (
    ipaddress.IPv4Address
    | ipaddress.IPv6Address
    | ipaddress.IPv4Interface
    | ipaddress.IPv6Interface
)
# inet's binary form: family, prefix bits, is-cidr flag, address length, the address
_INET_FAMILY = {4: 2, 6: 3}  # PGSQL_AF_INET, PGSQL_AF_INET6


@lru_cache(maxsize=4096)  # request rows carry the same few client addresses
def _encode_inet(value: str) -> bytes:
    """A host address (request_meta.client_ip's text). asyncpg's own codec parses the text
    with ``ipaddress`` for every row (~4 us, on the event loop)."""
    address = ipaddress.ip_address(value)
    packed = address.packed
    return bytes((_INET_FAMILY[address.version], len(packed) * 8, 0, len(packed))) + packed


def _decode_inet(data: bytes) -> IPValue:
    """As asyncpg's: an address, or an interface when a prefix is set."""
    bits, packed = data[1], data[4:]
    if bits == len(packed) * 8:
        return ipaddress.ip_address(packed)
    return ipaddress.ip_interface((packed, bits))


async def _init_connection(conn: asyncpg.Connection[Any]) -> None:
    await conn.set_type_codec(
        "jsonb", encoder=_encode_jsonb, decoder=_decode_jsonb, schema="pg_catalog", format="binary"
    )
    await conn.set_type_codec(
        "inet", encoder=_encode_inet, decoder=_decode_inet, schema="pg_catalog", format="binary"
    )


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
