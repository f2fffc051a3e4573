"""Build the configured vector store (call from an app factory, never at import time)."""

from __future__ import annotations

from backends.core.errors import ProviderUnavailable
from backends.core.settings import EngineSettings
from backends.core.vectorstore.base import VectorStore


def build_vector_store(settings: EngineSettings) -> VectorStore:
    """pgvector in DATABASE_URL by default; Qdrant when QDRANT_URL/QDRANT_PATH ask for it.

    The schema (pgvector tables, Qdrant meta collection) is created here, so a database
    without the vector extension fails at start-up with a message naming both ways out.
    """
    if settings.resolved_vector_store == "qdrant":
        from backends.core.vectorstore.qdrant_store import QdrantStore

        if settings.qdrant_url is None and settings.qdrant_path is None:
            raise ProviderUnavailable("VECTOR_STORE=qdrant needs QDRANT_URL (or QDRANT_PATH)")
        api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        qdrant = QdrantStore(
            url=settings.qdrant_url,
            api_key=api_key,
            path=settings.qdrant_path,
            timeout_s=settings.qdrant_timeout_s,
        )
        qdrant.ensure_schema()
        return qdrant

    from backends.core.vectorstore.pgvector_store import PgVectorStore

    if not settings.database_url:
        raise ProviderUnavailable(
            "the pgvector vector store needs DATABASE_URL (a PostgreSQL with pgvector); "
            "or set QDRANT_URL to use a Qdrant server"
        )
    pg = PgVectorStore(settings.database_url, query_timeout_s=settings.store_query_timeout_s)
    try:
        pg.ensure_schema()
    except BaseException:
        pg.close()
        raise
    return pg
