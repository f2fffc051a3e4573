"""Qdrant vector store (qdrant-client 1.20: ``query_points``; server or local mode).

Physical collections are ``ml_<name>`` so listing and stats only see ours. Qdrant point
ids must be UUIDs or integers, so each point's id is ``uuid5(collection, our id)``
(deterministic: re-indexing overwrites) and our string id lives in the payload.

Per-collection bookkeeping (created_at, query count) lives in a vector-less meta
collection ``ml__meta`` (one point per collection; ``_meta`` can never be a logical name,
which must start with a letter or digit). It persists and is shared like the data; the
query counter is a read-modify-write, so concurrent processes on one server may lose an
increment now and then: it is a statistic, not an invariant.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from qdrant_client import QdrantClient
from qdrant_client import models as qm
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from backends.core.errors import InvalidInput, NotFound, ProviderUnavailable, StoreUnreachable
from backends.core.vectorstore.base import (
    CollectionInfo,
    MetadataValue,
    Point,
    ScoredPoint,
    StoreKind,
    StoreStats,
    VectorStoreDown,
    check_collection_name,
    check_dimensions,
    dimension_mismatch,
    skipped_store,
    stats_from,
)
from backends.core.vectorstore.qdrant_filters import first_chunks, metadata_filter
from backends.core.vectorstore.sanitize import clean_metadata, clean_text
from shared_schemas.breaker import CircuitBreaker

PREFIX = "ml_"
META = "ml__meta"
_NAMESPACE = uuid.UUID("5b0f2a6e-6f0a-4c55-9d0e-6d6c2d766563")
_EPOCH = datetime.fromtimestamp(0, UTC)


def point_uuid(collection: str, point_id: str) -> str:
    """Deterministic Qdrant id for one of our string ids."""
    return str(uuid.uuid5(_NAMESPACE, f"{collection}/{point_id}"))


class QdrantStore:
    """Qdrant server when ``url`` is given, else local mode on ``path`` (single process).

    A server that is away costs a request at most ``timeout_s`` per HTTP call, and after a
    failure the server is skipped for ``retry_s`` (503 at once, as pgvector does), so a
    frozen Qdrant costs one timeout per interval rather than several per request. The
    readiness ping always asks and closes the breaker when the server answers.
    """

    kind: StoreKind = "qdrant"

    def __init__(
        self,
        *,
        url: str | None = None,
        api_key: str | None = None,
        path: Path | None = None,
        timeout_s: int = 5,
        retry_s: float = VectorStoreDown.retry_after_s,
    ) -> None:
        if url is None and path is None:
            raise ValueError("QdrantStore needs a url (server) or a path (local mode)")
        self._local = url is None
        self._breaker = CircuitBreaker(retry_s)
        if url is not None:
            self._client = QdrantClient(url=url, api_key=api_key, timeout=timeout_s)
        else:
            assert path is not None
            path.mkdir(parents=True, exist_ok=True)
            self._client = QdrantClient(path=str(path))
        # Local mode is an in-process engine without its own locking: serialise callers.
        self._lock: contextlib.AbstractContextManager[Any] = (
            threading.RLock() if self._local else contextlib.nullcontext()
        )

    @contextlib.contextmanager
    def _call(self, *, probe: bool = False) -> Iterator[QdrantClient]:
        """The client; a server that failed a moment ago is skipped unless this is a ``probe``."""
        if not probe and not self._breaker.allow():  # one trial when the interval ends
            raise skipped_store(self._breaker, "Qdrant")
        try:
            with self._lock:
                yield self._client
        except ResponseHandlingException as exc:  # refused, reset, timed out
            self._breaker.failed()
            raise StoreUnreachable(f"vector store (Qdrant) unreachable: {exc}") from exc
        except UnexpectedResponse as exc:
            if exc.status_code is not None and exc.status_code >= 500:
                self._breaker.failed()
                raise ProviderUnavailable(f"vector store (Qdrant) failed: {exc}") from exc
            self._breaker.succeeded()  # the server answered (a refusal)
            raise
        except BaseException:
            self._breaker.succeeded()  # the server answered (not found, bad input, ...)
            raise
        self._breaker.succeeded()

    def ensure_schema(self) -> None:
        """Create the meta collection (idempotent)."""
        with self._call() as client:
            if not client.collection_exists(META):
                client.create_collection(META, vectors_config={})

    def ensure_collection(self, name: str, dimensions: int) -> None:
        check_collection_name(name)
        if dimensions < 1:
            raise InvalidInput("vector dimensions must be at least 1")
        with self._call() as client:
            existing = self._dimensions(client, name)
            if existing is not None:
                if existing != dimensions:
                    raise dimension_mismatch(name, existing, dimensions)
                return
            params = qm.VectorParams(size=dimensions, distance=qm.Distance.COSINE)
            try:
                client.create_collection(PREFIX + name, vectors_config=params)
            except UnexpectedResponse:
                # Another process created it first (server mode): judge what it created.
                existing = self._dimensions(client, name)
                if existing is None:
                    raise
                if existing != dimensions:
                    raise dimension_mismatch(name, existing, dimensions) from None
                return
            if not self._local:  # payload indexes are a no-op in local mode
                for key, schema in (
                    ("document_id", qm.PayloadSchemaType.KEYWORD),
                    ("chunk_index", qm.PayloadSchemaType.INTEGER),
                ):
                    client.create_payload_index(PREFIX + name, key, field_schema=schema)
            self._write_meta(client, name, {"created_at": datetime.now(UTC).isoformat()})

    def collection_exists(self, name: str) -> bool:
        with self._call() as client:
            return self._dimensions(client, name) is not None

    def collection_dimensions(self, name: str) -> int:
        with self._call() as client:
            return self._require(client, name)

    def upsert(self, collection: str, points: Sequence[Point]) -> None:
        with self._call() as client:
            self._upsert(client, collection, points)

    def replace_documents(self, collection: str, points: Sequence[Point]) -> int:
        document_ids = sorted({clean_text(p.document_id) for p in points})
        if not document_ids:
            return 0
        docs = qm.FieldCondition(key="document_id", match=qm.MatchAny(any=document_ids))
        with self._call() as client:
            self._require(client, collection)
            old = client.count(PREFIX + collection, count_filter=qm.Filter(must=[docs])).count
            # Upsert first, then prune: readers never see the document missing.
            new_ids = self._upsert(client, collection, points)
            stale = qm.Filter(must=[docs], must_not=[qm.HasIdCondition(has_id=new_ids)])
            client.delete(PREFIX + collection, points_selector=stale, wait=True)
            return old

    def delete_document(self, collection: str, document_id: str) -> int:
        match = qm.MatchValue(value=clean_text(document_id))
        doc = qm.Filter(must=[qm.FieldCondition(key="document_id", match=match)])
        with self._call() as client:
            self._require(client, collection)
            removed = client.count(PREFIX + collection, count_filter=doc).count
            client.delete(PREFIX + collection, points_selector=doc, wait=True)
            return removed

    def search(
        self,
        collection: str,
        vector: npt.NDArray[np.float32],
        top_k: int,
        score_threshold: float | None = None,
        filter: Mapping[str, MetadataValue] | None = None,
        *,
        record: bool = False,
    ) -> list[ScoredPoint]:
        if top_k < 1:
            raise InvalidInput("top_k must be at least 1")
        hits = self._search(collection, vector, top_k, score_threshold, filter)
        if record:
            self.record_query(collection)
        return hits

    def _search(
        self,
        collection: str,
        vector: npt.NDArray[np.float32],
        top_k: int,
        score_threshold: float | None,
        filter: Mapping[str, MetadataValue] | None,
    ) -> list[ScoredPoint]:
        with self._call() as client:
            check_dimensions(collection, self._require(client, collection), vector)
            response = client.query_points(
                PREFIX + collection,
                query=vector.astype(np.float32).tolist(),
                limit=top_k,
                score_threshold=score_threshold,
                query_filter=metadata_filter(clean_metadata(filter)) if filter else None,
                with_payload=True,
            )
        hits = []
        for hit in response.points:
            payload = hit.payload or {}
            hits.append(
                ScoredPoint(
                    id=str(payload.get("id", hit.id)),
                    document_id=str(payload.get("document_id", "")),
                    chunk_index=payload.get("chunk_index"),
                    text=str(payload.get("text", "")),
                    metadata=dict(payload.get("metadata") or {}),
                    score=float(hit.score),
                )
            )
        return hits

    def record_query(self, collection: str) -> None:
        with self._call() as client:
            if self._dimensions(client, collection) is None:
                return
            meta = self._read_meta(client, [collection]).get(collection, {})
            self._write_meta(client, collection, {"queries": int(meta.get("queries", 0)) + 1})

    def delete_collection(self, name: str) -> int:
        with self._call() as client:
            self._require(client, name)
            chunks = client.count(PREFIX + name, exact=True).count
            client.delete_collection(PREFIX + name)
            if client.collection_exists(META):
                client.delete(META, points_selector=[point_uuid(META, name)], wait=True)
            return chunks

    def list_collections(self) -> list[CollectionInfo]:
        with self._call() as client:
            names = sorted(
                c.name[len(PREFIX) :]
                for c in client.get_collections().collections
                if c.name.startswith(PREFIX) and c.name != META
            )
            meta = self._read_meta(client, names)
            infos = []
            for name in names:
                physical = PREFIX + name
                created = meta.get(name, {}).get("created_at")
                infos.append(
                    CollectionInfo(
                        name=name,
                        dimensions=self._dimensions(client, name) or 0,
                        chunks=client.count(physical, exact=True).count,
                        documents=client.count(physical, count_filter=first_chunks()).count,
                        created_at=datetime.fromisoformat(created) if created else _EPOCH,
                        queries=int(meta.get(name, {}).get("queries", 0)),
                    )
                )
        return infos

    def stats(self) -> StoreStats:
        return stats_from(self.list_collections())

    def ping(self) -> None:
        """One call, even while the breaker is open; closes it when the server answers."""
        with self._call(probe=True) as client:  # reports success to the breaker
            client.collection_exists(META)

    def close(self) -> None:
        with self._lock:
            self._client.close()

    def _upsert(self, client: QdrantClient, collection: str, points: Sequence[Point]) -> list[str]:
        dims = self._require(client, collection)
        structs = []
        for p in points:
            check_dimensions(collection, dims, p.vector)
            point_id = clean_text(p.id)
            payload = {
                "id": point_id,
                "document_id": clean_text(p.document_id),
                "chunk_index": p.chunk_index,
                "text": clean_text(p.text),
                "metadata": clean_metadata(p.metadata),
            }
            qid = point_uuid(collection, point_id)
            vector = p.vector.astype(np.float32).tolist()
            structs.append(qm.PointStruct(id=qid, vector=vector, payload=payload))
        if structs:
            client.upsert(PREFIX + collection, points=structs, wait=True)
        return [str(s.id) for s in structs]

    def _dimensions(self, client: QdrantClient, name: str) -> int | None:
        if not client.collection_exists(PREFIX + name):
            return None
        vectors = client.get_collection(PREFIX + name).config.params.vectors
        return vectors.size if isinstance(vectors, qm.VectorParams) else None

    def _require(self, client: QdrantClient, name: str) -> int:
        dims = self._dimensions(client, name)
        if dims is None:
            raise NotFound(f"collection '{name}' not found")
        return dims

    def _read_meta(self, client: QdrantClient, names: list[str]) -> dict[str, dict[str, Any]]:
        if not names or not client.collection_exists(META):
            return {}
        records = client.retrieve(META, ids=[point_uuid(META, n) for n in names])
        return {str(r.payload["name"]): dict(r.payload) for r in records if r.payload}

    def _write_meta(self, client: QdrantClient, name: str, values: dict[str, Any]) -> None:
        if not client.collection_exists(META):
            client.create_collection(META, vectors_config={})
        qid = point_uuid(META, name)
        current = client.retrieve(META, ids=[qid])
        payload = {**(current[0].payload or {} if current else {}), **values, "name": name}
        client.upsert(META, points=[qm.PointStruct(id=qid, vector={}, payload=payload)], wait=True)
