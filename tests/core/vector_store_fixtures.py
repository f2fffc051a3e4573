"""Both vector stores as one parametrised fixture (Qdrant local mode, real PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.core.vectorstore.base import VectorStore
from backends.core.vectorstore.pgvector_store import PgVectorStore
from backends.core.vectorstore.qdrant_store import QdrantStore

STORE_KINDS = ["qdrant", "pgvector"]


@pytest.fixture(scope="module")
def pg_store(pg_url: str) -> Iterator[PgVectorStore]:
    store = PgVectorStore(pg_url, max_size=4)
    store.ensure_schema()
    yield store
    store.close()


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    """A store with no collections of this test's (names from ``collection_name``)."""
    if request.param == "pgvector":
        yield request.getfixturevalue("pg_store")
        return
    qdrant = QdrantStore(path=tmp_path / "qdrant")
    qdrant.ensure_schema()
    yield qdrant
    qdrant.close()


@pytest.fixture
def collection_name(store: VectorStore) -> Iterator[str]:
    """A fresh collection name (the PostgreSQL database is shared by the whole session)."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    yield name
    if store.collection_exists(name):
        store.delete_collection(name)
