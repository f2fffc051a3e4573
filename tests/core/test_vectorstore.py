"""One suite, both vector stores: Qdrant (local mode) and pgvector (real PostgreSQL 18)."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from backends.core.errors import InvalidInput, NotFound, ProviderUnavailable
from backends.core.settings import EngineSettings
from backends.core.vectorstore import build_vector_store
from backends.core.vectorstore.base import Metadata, Point, VectorStore
from backends.core.vectorstore.pgvector_store import PgVectorStore, search_statement
from backends.core.vectorstore.qdrant_store import QdrantStore, point_uuid
from tests.core.vector_store_fixtures import collection_name, pg_store, store

__all__ = ["collection_name", "pg_store", "store"]


def vec(*xs: float) -> np.ndarray:
    v = np.asarray(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def point(
    pid: str,
    v: np.ndarray,
    doc: str | None = None,
    chunk: int | None = None,
    text: str = "",
    metadata: Metadata | None = None,
) -> Point:
    return Point(
        id=pid,
        document_id=doc or pid,
        chunk_index=chunk,
        text=text or f"text {pid}",
        vector=v,
        metadata=metadata or {},
    )


def test_search_orders_by_cosine_and_applies_top_k_and_threshold(
    store: VectorStore, collection_name: str
):
    store.ensure_collection(collection_name, 2)
    angles = [0, 30, 60, 90, 120]
    store.upsert(
        collection_name,
        [
            point(
                f"p{a}",
                vec(math.cos(math.radians(a)), math.sin(math.radians(a))),
                metadata={"angle": a},
            )
            for a in angles
        ],
    )
    hits = store.search(collection_name, vec(1, 0), top_k=3)
    assert [h.id for h in hits] == ["p0", "p30", "p60"]
    assert [round(h.score, 4) for h in hits] == [1.0, round(math.cos(math.radians(30)), 4), 0.5]
    assert hits[1].metadata == {"angle": 30}
    assert hits[0].document_id == "p0" and hits[0].chunk_index is None
    assert hits[0].text == "text p0"
    above = store.search(collection_name, vec(1, 0), top_k=10, score_threshold=0.4)
    assert [h.id for h in above] == ["p0", "p30", "p60"]
    everything = store.search(collection_name, vec(1, 0), top_k=10, score_threshold=-1.0)
    assert len(everything) == 5 and everything[-1].score == pytest.approx(-0.5, abs=1e-4)


def test_top_k_beyond_default_ef_search_returns_k_hits(store: VectorStore, collection_name: str):
    rng = np.random.default_rng(7)
    store.ensure_collection(collection_name, 16)
    vectors = rng.normal(size=(150, 16)).astype(np.float32)
    store.upsert(
        collection_name, [point(f"r{i}", v / np.linalg.norm(v)) for i, v in enumerate(vectors)]
    )
    hits = store.search(collection_name, vec(*vectors[0]), top_k=100, score_threshold=-1)
    assert len(hits) == 100
    assert hits[0].id == "r0"
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)


def test_upsert_overwrites_by_id(store: VectorStore, collection_name: str):
    store.ensure_collection(collection_name, 2)
    store.upsert(collection_name, [point("a", vec(1, 0), text="old")])
    store.upsert(collection_name, [point("a", vec(1, 0), text="new")])
    hits = store.search(collection_name, vec(1, 0), top_k=10)
    assert [(h.id, h.text) for h in hits] == [("a", "new")]


def test_replace_documents_swaps_all_chunks(store: VectorStore, collection_name: str):
    store.ensure_collection(collection_name, 2)
    first = [point(f"doc#{i}", vec(1, i), doc="doc", chunk=i) for i in range(4)]
    assert store.replace_documents(collection_name, first) == 0
    store.replace_documents(collection_name, [point("other", vec(0, 1))])
    second = [point(f"doc#{i}", vec(1, i), doc="doc", chunk=i, text="v2") for i in range(2)]
    assert store.replace_documents(collection_name, second) == 4
    hits = store.search(collection_name, vec(1, 0), top_k=10, score_threshold=-1)
    assert sorted(h.id for h in hits) == ["doc#0", "doc#1", "other"]
    assert {h.text for h in hits if h.document_id == "doc"} == {"v2"}
    [info] = [c for c in store.list_collections() if c.name == collection_name]
    assert (info.documents, info.chunks, info.dimensions) == (2, 3, 2)


def test_delete_document_removes_every_chunk(store: VectorStore, collection_name: str):
    store.ensure_collection(collection_name, 2)
    store.upsert(collection_name, [point(f"d#{i}", vec(1, i), doc="d", chunk=i) for i in range(3)])
    store.upsert(collection_name, [point("keep", vec(1, 1))])
    assert store.delete_document(collection_name, "d") == 3
    assert store.delete_document(collection_name, "d") == 0
    assert [h.id for h in store.search(collection_name, vec(1, 0), top_k=10)] == ["keep"]


def test_filter_matches_every_key_exactly(store: VectorStore, collection_name: str):
    store.ensure_collection(collection_name, 2)
    store.upsert(
        collection_name,
        [
            point("a", vec(1, 0), metadata={"lang": "en", "year": 2024, "draft": False, "w": 1.5}),
            point(
                "b", vec(1, 0.1), metadata={"lang": "fr", "year": 2024, "draft": True, "w": None}
            ),
            point("c", vec(1, 0.2), metadata={"lang": "en", "year": 2023, "a.b": "dotted"}),
        ],
    )

    def ids(f: Metadata) -> list[str]:
        return [h.id for h in store.search(collection_name, vec(1, 0), top_k=10, filter=f)]

    assert ids({"lang": "en"}) == ["a", "c"]
    assert ids({"lang": "en", "year": 2024}) == ["a"]
    assert ids({"year": 2024.0}) == ["a", "b"]  # numbers compare numerically
    assert ids({"draft": True}) == ["b"]
    assert ids({"draft": False}) == ["a"]
    assert ids({"w": 1.5}) == ["a"]
    assert ids({"w": None}) == ["b"]
    assert ids({"a.b": "dotted"}) == ["c"]  # a dotted key is one key, not a path
    assert ids({"lang": "de"}) == []
    assert ids({"missing": "x"}) == []


def test_unknown_collection_is_not_found(store: VectorStore, collection_name: str):
    assert not store.collection_exists(collection_name)
    with pytest.raises(NotFound):
        store.search(collection_name, vec(1, 0), top_k=1)
    with pytest.raises(NotFound):
        store.upsert(collection_name, [point("a", vec(1, 0))])
    with pytest.raises(NotFound):
        store.delete_collection(collection_name)
    with pytest.raises(NotFound):
        store.collection_dimensions(collection_name)


def test_delete_collection_reports_chunks_and_forgets_it(store: VectorStore, collection_name: str):
    store.ensure_collection(collection_name, 2)
    store.upsert(collection_name, [point(f"x{i}", vec(1, i)) for i in range(5)])
    assert store.delete_collection(collection_name) == 5
    assert not store.collection_exists(collection_name)
    assert collection_name not in {c.name for c in store.list_collections()}
    store.ensure_collection(collection_name, 3)  # the name is free again, any size
    assert store.collection_dimensions(collection_name) == 3
    assert store.search(collection_name, vec(1, 0, 0), top_k=5) == []


def test_dimension_mismatch_is_invalid_input(store: VectorStore, collection_name: str):
    store.ensure_collection(collection_name, 4)
    store.ensure_collection(collection_name, 4)  # idempotent
    with pytest.raises(InvalidInput, match="4-dimensional"):
        store.ensure_collection(collection_name, 8)
    with pytest.raises(InvalidInput) as err:
        store.upsert(collection_name, [point("a", vec(1, 0, 0))])
    assert err.value.details[0]["type"] == "dimension_mismatch"
    with pytest.raises(InvalidInput):
        store.replace_documents(collection_name, [point("a", vec(1, 0, 0, 0, 0))])
    with pytest.raises(InvalidInput):
        store.search(collection_name, vec(1, 0), top_k=1)
    [info] = [c for c in store.list_collections() if c.name == collection_name]
    assert (info.chunks, info.dimensions) == (0, 4)


def test_nul_characters_are_stripped_not_a_crash(store: VectorStore, collection_name: str):
    store.ensure_collection(collection_name, 2)
    store.upsert(
        collection_name,
        [
            point(
                "n\x00ul",
                vec(1, 0),
                doc="d\x00oc",
                text="a\x00b",
                metadata={"k\x00": "v\x00al", "s": "\ud800x"},
            )
        ],
    )
    [hit] = store.search(collection_name, vec(1, 0), top_k=1, filter={"k": "v\x00al"})
    assert (hit.id, hit.document_id, hit.text) == ("nul", "doc", "ab")
    assert hit.metadata["k"] == "val"
    assert hit.metadata["s"] == "?x"  # a lone surrogate cannot be stored as UTF-8
    assert store.delete_document(collection_name, "doc") == 1


def test_list_stats_and_query_counts(store: VectorStore, collection_name: str):
    other = collection_name + "-b"
    try:
        store.ensure_collection(collection_name, 2)
        store.ensure_collection(other, 3)
        store.replace_documents(
            collection_name, [point(f"a#{i}", vec(1, i), doc="a", chunk=i) for i in range(3)]
        )
        store.replace_documents(collection_name, [point("b", vec(0, 1))])
        for _ in range(3):
            store.record_query(collection_name)
        store.record_query(other)
        store.record_query(collection_name + "-never-created")  # ignored, no error
        mine = {c.name: c for c in store.list_collections() if c.name.startswith(collection_name)}
        assert set(mine) == {collection_name, other}
        a, b = mine[collection_name], mine[other]
        assert (a.documents, a.chunks, a.dimensions, a.queries) == (2, 4, 2, 3)
        assert (b.documents, b.chunks, b.dimensions, b.queries) == (0, 0, 3, 1)
        assert a.created_at.tzinfo is not None
        stats = store.stats()
        assert stats.collections >= 2 and stats.chunks >= 4 and stats.queries >= 4
        assert stats.collections == len(stats.per_collection)
        assert stats.chunks == sum(c.chunks for c in stats.per_collection)
    finally:
        if store.collection_exists(other):
            store.delete_collection(other)


def test_ping(store: VectorStore):
    store.ping()


def test_qdrant_point_ids_are_uuids_derived_from_our_ids(tmp_path):
    qdrant = QdrantStore(path=tmp_path / "q")
    try:
        qdrant.ensure_collection("c", 2)
        qdrant.upsert("c", [point("doc-123#0", vec(1, 0), doc="doc-123", chunk=0)])
        assert point_uuid("c", "doc-123#0") == point_uuid("c", "doc-123#0")
        assert point_uuid("c", "doc-123#0") != point_uuid("d", "doc-123#0")
        [hit] = qdrant.search("c", vec(1, 0), top_k=1)
        assert hit.id == "doc-123#0"
        # Only our ml_ collections are listed, never the meta collection or foreign ones.
        qdrant._client.create_collection("foreign", vectors_config={})
        assert [c.name for c in qdrant.list_collections()] == ["c"]
    finally:
        qdrant.close()


def test_pgvector_search_uses_the_collection_hnsw_index(pg_store: PgVectorStore, pg_url: str):
    name = "idx-check"
    pg_store.ensure_collection(name, 8)
    try:
        rng = np.random.default_rng(1)
        rows = rng.normal(size=(300, 8)).astype(np.float32)
        pg_store.upsert(name, [point(f"i{i}", vec(*r)) for i, r in enumerate(rows)])
        literal = "[" + ",".join(["0.1"] * 8) + "]"
        with psycopg.connect(pg_url, autocommit=True) as conn:
            # Tiny tables make a sort cheaper than the index: rule the alternatives out.
            for knob in ("seqscan", "bitmapscan", "sort"):
                conn.execute(f"SET enable_{knob} = off")
            for filtered in (False, True):
                stmt = search_statement(name, 8, filtered=filtered)
                params = [literal, *([Jsonb({"k": 1})] if filtered else []), literal, 5]
                plan = "\n".join(r[0] for r in conn.execute(sql.SQL("EXPLAIN ") + stmt, params))
                assert "Index Scan using ml_vector_hnsw_" in plan, plan
    finally:
        pg_store.delete_collection(name)


def test_pgvector_data_is_visible_to_another_process(pg_store: PgVectorStore, pg_url: str):
    name = "cross-process"
    pg_store.ensure_collection(name, 3)
    try:
        pg_store.upsert(name, [point("shared", vec(0, 0, 1), text="written by the parent")])
        script = textwrap.dedent(f"""
            import numpy as np
            from backends.core.vectorstore.base import Point
            from backends.core.vectorstore.pgvector_store import PgVectorStore, search_statement
            s = PgVectorStore({pg_url!r})
            hit = s.search({name!r}, np.array([0, 0, 1], dtype=np.float32), top_k=1)[0]
            child = Point(id="child", document_id="child", chunk_index=None,
                          text="from the child", vector=np.array([0, 1, 0], dtype=np.float32))
            s.upsert({name!r}, [child])
            print(hit.id, hit.text, sep="|")
            s.close()
        """)
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "shared|written by the parent"
        [hit] = pg_store.search(name, vec(0, 1, 0), top_k=1)
        assert (hit.id, hit.text) == ("child", "from the child")
    finally:
        pg_store.delete_collection(name)


def test_database_without_vector_extension_fails_naming_both_ways_out(pg_url: str):
    parts = urlsplit(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS novector")
        admin.execute("CREATE DATABASE novector")
        admin.execute("DROP ROLE IF EXISTS plain_user")
        admin.execute("CREATE ROLE plain_user LOGIN")
    netloc = "plain_user@" + parts.netloc.split("@")[-1]
    dsn = urlunsplit((parts.scheme, netloc, "/novector", parts.query, parts.fragment))
    settings = EngineSettings(database_url=dsn, vector_store="pgvector", _env_file=None)
    try:
        with pytest.raises(ProviderUnavailable) as err:
            build_vector_store(settings)
        assert "pgvector" in err.value.message and "QDRANT_URL" in err.value.message
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("DROP DATABASE IF EXISTS novector WITH (FORCE)")
            admin.execute("DROP ROLE IF EXISTS plain_user")


def test_unreachable_database_is_provider_unavailable():
    with pytest.raises(ProviderUnavailable, match="QDRANT_URL"):
        PgVectorStore("postgresql://nobody@127.0.0.1:1/none", timeout_s=1)


@pytest.mark.parametrize("bad", ["", "_meta", "a/b", "a%sb", "x" * 64, "sp ace"])
def test_invalid_collection_names_are_rejected(store: VectorStore, bad: str):
    with pytest.raises(InvalidInput):
        store.ensure_collection(bad, 2)
    with pytest.raises(NotFound):
        store.search(bad, vec(1, 0), top_k=1)
