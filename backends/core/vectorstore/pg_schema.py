"""DDL of the pgvector store, created by the store itself (idempotent, under an advisory lock).

Ownership: these ``ml_vector_*`` tables belong to the vector store, not to the Django
migration history. The Django backend owns the migrations of the request-log tables
(``ml_service_requests``, ``ml_service_usage``, ``ml_service_cache``) only; it must not
manage, alter or drop these.

Layout choice: one chunks table with an untyped ``vector`` column, and per collection a
*partial* HNSW expression index ``((embedding::vector(d)) vector_cosine_ops) WHERE
collection = '<name>'``. Compared with one table per collection this keeps a fixed schema
(one upsert/search statement, a real foreign key with ON DELETE CASCADE, cheap listing and
stats) while each collection still gets its own correctly-typed ANN index; the cast in
the index also makes PostgreSQL itself reject a vector of the wrong size for that
collection. HNSW handles ``vector`` up to 2000 dimensions and ``halfvec`` up to 4000, so
wider collections index a halfvec cast; beyond that they are searched exactly.
"""

from __future__ import annotations

import hashlib

import psycopg
from psycopg import sql

from backends.core.errors import ProviderUnavailable

COLLECTIONS = "ml_vector_collections"
CHUNKS = "ml_vector_chunks"
_SCHEMA_LOCK_KEY = 0x6D6C5F766563  # "ml_vec": one fixed advisory lock id for the DDL
MAX_VECTOR_INDEX_DIMS = 2000
MAX_HALFVEC_INDEX_DIMS = 4000
MAX_DIMS = 16000

_DDL = f"""
CREATE TABLE IF NOT EXISTS {COLLECTIONS} (
    name text PRIMARY KEY,
    dimensions integer NOT NULL CHECK (dimensions BETWEEN 1 AND {MAX_DIMS}),
    created_at timestamptz NOT NULL DEFAULT now(),
    query_count bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS {CHUNKS} (
    collection text NOT NULL REFERENCES {COLLECTIONS} (name) ON DELETE CASCADE,
    id text NOT NULL,
    document_id text NOT NULL,
    chunk_index integer,
    text text NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    embedding vector NOT NULL,
    PRIMARY KEY (collection, id)
);
CREATE INDEX IF NOT EXISTS {CHUNKS}_document_idx ON {CHUNKS} (collection, document_id);
"""

NO_EXTENSION_HELP = (
    "the PostgreSQL database has no 'vector' extension and it could not be created ({error}). "
    "Either install pgvector on the server and run 'CREATE EXTENSION vector' in this "
    "database as a superuser, or set QDRANT_URL to use a Qdrant server as the vector store."
)


def ensure_schema(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Create the extension and tables if missing; safe to run from many processes at once."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
        installed = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone()
        if installed is None:
            try:
                with conn.transaction():  # a savepoint: keep the outer transaction usable
                    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            except psycopg.Error as exc:
                message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc)
                raise ProviderUnavailable(NO_EXTENSION_HELP.format(error=message)) from exc
        conn.execute(_DDL)


def index_name(collection: str) -> str:
    """A stable index name within PostgreSQL's 63-byte identifier limit."""
    return "ml_vector_hnsw_" + hashlib.sha256(collection.encode()).hexdigest()[:24]


def vector_expr(dimensions: int) -> tuple[sql.Composable, sql.Composable]:
    """The (column expression, query cast) pair shared by the index and the search."""
    dims = sql.Literal(dimensions)
    kind = sql.SQL("halfvec" if dimensions > MAX_VECTOR_INDEX_DIMS else "vector")
    column = sql.SQL("(embedding::{}({}))").format(kind, dims)
    query = sql.SQL("%s::{}({})").format(kind, dims)
    return column, query


def create_collection_index(
    conn: psycopg.Connection[tuple[object, ...]], collection: str, dimensions: int
) -> None:
    """The collection's HNSW cosine index (partial on its rows)."""
    if dimensions > MAX_HALFVEC_INDEX_DIMS:
        return  # no ANN index type supports it: searched exactly
    column, _ = vector_expr(dimensions)
    ops = sql.SQL(
        "halfvec_cosine_ops" if dimensions > MAX_VECTOR_INDEX_DIMS else "vector_cosine_ops"
    )
    conn.execute(
        sql.SQL(
            "CREATE INDEX IF NOT EXISTS {} ON {} USING hnsw ({} {}) WHERE collection = {}"
        ).format(
            sql.Identifier(index_name(collection)),
            sql.Identifier(CHUNKS),
            column,
            ops,
            sql.Literal(collection),
        )
    )


def drop_collection_index(conn: psycopg.Connection[tuple[object, ...]], collection: str) -> None:
    conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(index_name(collection))))
