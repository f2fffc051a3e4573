"""The RAG engine end to end with real local embeddings, over both vector stores."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
import respx

from backends.core.embeddings.local import LocalMiniLMProvider
from backends.core.errors import InvalidInput, NotFound
from backends.core.inference.runtime import InferenceRuntime
from backends.core.llm import build_llm_provider
from backends.core.rag import DocumentInput, RagService
from backends.core.rag.answering import extractive_answer
from backends.core.vectorstore.base import ScoredPoint, VectorStore
from backends.core.vectorstore.pgvector_store import PgVectorStore
from tests.core.engine_fixtures import BASE_URL, engine_settings, openai_mock
from tests.core.rag_corpus import DOCUMENTS, QUESTIONS
from tests.core.vector_store_fixtures import collection_name, pg_store, store

__all__ = ["collection_name", "openai_mock", "pg_store", "store"]


@pytest.fixture(scope="module")
def embeddings() -> LocalMiniLMProvider:
    return LocalMiniLMProvider(InferenceRuntime(engine_settings()))


@pytest.fixture
def rag(store: VectorStore, embeddings: LocalMiniLMProvider) -> RagService:
    return RagService(store, embeddings)


def corpus() -> list[DocumentInput]:
    return [
        DocumentInput(id=doc_id, text=text, metadata={"category": category, "n": i})
        for i, (doc_id, (category, text)) in enumerate(DOCUMENTS.items())
    ]


def collection_info(rag: RagService, name: str):
    [info] = [c for c in rag.list_collections() if c.name == name]
    return info


def test_fifty_documents_each_question_finds_its_document_in_top_3(
    rag: RagService, collection_name: str
):
    assert len(DOCUMENTS) == 50
    result = rag.index(corpus(), collection_name)
    assert (result.indexed, result.model, result.provider) == (50, "all-MiniLM-L6-v2", "local")
    assert result.ids == list(DOCUMENTS)
    misses = {}
    for question, expected in QUESTIONS.items():
        found = rag.search(question, collection_name, top_k=3)
        ids = [hit.document_id for hit in found.results]
        if expected not in ids:
            misses[question] = ids
    assert misses == {}
    top = rag.search("How do plants make food from sunlight?", collection_name, top_k=1)
    assert top.results[0].id == "photosynthesis" and top.results[0].chunk_index is None
    assert top.results[0].metadata == {"category": "science", "n": 0}
    assert top.total == 1 and 0 < top.results[0].score <= 1


def test_reindexing_replaces_without_duplicates(rag: RagService, collection_name: str):
    rag.index(corpus(), collection_name)
    rag.index(corpus(), collection_name)
    info = collection_info(rag, collection_name)
    assert (info.documents, info.chunks, info.dimensions) == (50, 50, 384)
    changed = DocumentInput(id="espresso", text="Espresso machines need descaling monthly.")
    rag.index([changed], collection_name)
    hits = rag.search("descaling an espresso machine", collection_name, top_k=50).results
    espresso = [h for h in hits if h.document_id == "espresso"]
    assert [h.text for h in espresso] == ["Espresso machines need descaling monthly."]
    assert espresso[0].metadata == {}  # the replacement's metadata, not the old one's
    assert collection_info(rag, collection_name).chunks == 50


def test_documents_without_id_get_uuid4s(rag: RagService, collection_name: str):
    result = rag.index(
        [DocumentInput(text="alpha note"), DocumentInput(text="beta note")], collection_name
    )
    assert len(set(result.ids)) == 2
    assert all(len(i) == 36 and i[14] == "4" for i in result.ids)


def test_index_document_chunks_and_reindex_replaces_old_chunks(
    rag: RagService, collection_name: str
):
    long_text = "\n\n".join(text for _, text in DOCUMENTS.values())
    first = rag.index_document(
        "handbook",
        long_text,
        collection_name,
        {"kind": "handbook"},
        chunk_size=300,
        chunk_overlap=50,
    )
    assert first.chunks > 20 and first.replaced == 0 and first.chunk_overlap == 50
    assert collection_info(rag, collection_name).chunks == first.chunks
    hits = rag.search("the three-way handshake of TCP", collection_name, top_k=1).results
    assert hits[0].document_id == "handbook" and "SYN" in hits[0].text
    assert hits[0].id == f"handbook#{hits[0].chunk_index}"

    second = rag.index_document(
        "handbook", long_text, collection_name, chunk_size=1000, chunk_overlap=900
    )
    assert second.replaced == first.chunks
    assert second.chunk_overlap == 500  # clamped to chunk_size // 2
    info = collection_info(rag, collection_name)
    assert (info.documents, info.chunks) == (1, second.chunks)
    all_hits = rag.search("anything", collection_name, top_k=100, score_threshold=-1).results
    assert sorted(h.chunk_index or 0 for h in all_hits) == list(range(second.chunks))
    assert all(h.chunk_index is not None for h in all_hits)
    assert {h.metadata.get("kind") for h in all_hits} == {None}  # new metadata replaced old


def test_whole_document_and_chunked_document_replace_each_other(
    rag: RagService, collection_name: str
):
    rag.index_document("doc", "One. " * 100, collection_name, chunk_size=100, chunk_overlap=0)
    rag.index([DocumentInput(id="doc", text="Now a single point.")], collection_name)
    info = collection_info(rag, collection_name)
    assert (info.documents, info.chunks) == (1, 1)


def test_filter_restricts_results(rag: RagService, collection_name: str):
    rag.index(corpus(), collection_name)
    found = rag.search(
        "history", collection_name, top_k=50, score_threshold=-1, filter={"category": "history"}
    )
    expected = {d for d, (category, _) in DOCUMENTS.items() if category == "history"}
    assert {h.document_id for h in found.results} == expected
    one = rag.search("anything", collection_name, top_k=5, score_threshold=-1, filter={"n": 3})
    assert [h.document_id for h in one.results] == ["sourdough"]


def test_unknown_collection_is_not_found(rag: RagService, collection_name: str):
    with pytest.raises(NotFound):
        rag.search("question", collection_name)
    with pytest.raises(NotFound):
        rag.query("question", collection_name)
    with pytest.raises(NotFound):
        rag.delete_collection(collection_name)


def test_delete_collection(rag: RagService, collection_name: str):
    rag.index(corpus()[:5], collection_name)
    deleted = rag.delete_collection(collection_name)
    assert (deleted.deleted, deleted.name, deleted.chunks_deleted) == (True, collection_name, 5)
    assert collection_name not in {c.name for c in rag.list_collections()}
    with pytest.raises(NotFound):
        rag.search("photosynthesis", collection_name)


def test_extractive_answer_cites_the_relevant_source(rag: RagService, collection_name: str):
    rag.index(corpus(), collection_name)
    outcome = rag.query("What happens to the Bastille in 1789?", collection_name, top_k=3)
    assert outcome.provider == "extractive" and outcome.model == "all-MiniLM-L6-v2"
    assert outcome.usage is None
    assert outcome.sources[0].document_id == "french-revolution"
    assert "storming of the Bastille" in outcome.answer
    assert "[1]" in outcome.answer


def test_query_without_relevant_sources_says_so(rag: RagService, collection_name: str):
    rag.index(corpus()[:3], collection_name)
    outcome = rag.query("quarterly tax filing deadlines", collection_name, score_threshold=0.95)
    assert outcome.sources == []
    assert "No relevant information" in outcome.answer and outcome.provider == "extractive"


def test_query_with_an_llm_sends_numbered_context(
    store: VectorStore,
    embeddings: LocalMiniLMProvider,
    collection_name: str,
    openai_mock: respx.MockRouter,
):
    settings = engine_settings(
        llm_provider="openai",
        openai_api_key="sk-test",
        openai_base_url=BASE_URL,
        openai_max_retries=0,
    )
    llm = build_llm_provider(settings)
    assert llm is not None
    rag = RagService(store, embeddings, llm)
    rag.index(corpus(), collection_name)
    completion = {
        "id": "c1",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "Gutenberg did [1]."},
            }
        ],
        "usage": {"prompt_tokens": 120, "completion_tokens": 5, "total_tokens": 125},
    }
    route = openai_mock.post("/chat/completions").mock(
        return_value=httpx.Response(200, json=completion)
    )
    outcome = rag.query(
        "Who built the first printing press with movable type?",
        collection_name,
        top_k=2,
        temperature=0.1,
    )
    assert route.call_count == 1
    sent = json.loads(route.calls.last.request.content)
    assert sent["temperature"] == 0.1
    system, user = sent["messages"]
    assert system["role"] == "system" and "[1]" in system["content"]
    assert "[1] (document: printing-press)" in user["content"]
    assert "Question: Who built the first printing press" in user["content"]
    assert (outcome.answer, outcome.provider, outcome.model) == (
        "Gutenberg did [1].",
        "openai",
        "gpt-4o-mini",
    )
    assert outcome.usage is not None and outcome.usage.total_tokens == 125
    assert len(outcome.sources) == 2


def test_stats_count_queries(rag: RagService, collection_name: str):
    rag.index(corpus()[:4], collection_name)
    rag.search("coffee", collection_name)
    rag.query("coffee", collection_name)
    stats = rag.stats()
    assert stats.vector_store == rag.store.kind
    assert stats.embedding_model == "all-MiniLM-L6-v2"
    mine = [c for c in stats.per_collection if c.name == collection_name]
    assert [(c.documents, c.chunks, c.queries) for c in mine] == [(4, 4, 2)]


def test_embedding_model_change_is_a_dimension_error(rag: RagService, collection_name: str):
    rag.store.ensure_collection(collection_name, 1536)  # as if made with another model
    with pytest.raises(InvalidInput, match="1536"):
        rag.index(corpus()[:1], collection_name)
    with pytest.raises(InvalidInput, match="1536"):
        rag.search("photosynthesis", collection_name)
    assert collection_info(rag, collection_name).queries == 0  # a refused search is not counted


def test_a_collection_dropped_after_a_search_is_not_found(rag: RagService, collection_name: str):
    rag.index(corpus()[:2], collection_name)
    assert rag.search("coffee", collection_name).total == 2
    rag.store.delete_collection(collection_name)  # as another process would: rag never sees it
    with pytest.raises(NotFound):
        rag.search("coffee", collection_name)
    rag.store.ensure_collection(collection_name, 1536)  # made again, by another model
    with pytest.raises(InvalidInput, match="1536"):
        rag.search("coffee", collection_name)
    rag.store.delete_collection(collection_name)
    rag.index(corpus()[:1], collection_name)
    assert rag.search("coffee", collection_name).total == 1
    assert collection_info(rag, collection_name).queries == 1


def test_a_counted_search_takes_one_pooled_connection(
    pg_store: PgVectorStore, embeddings: LocalMiniLMProvider
):
    """The check, the k-NN query and the count once took a connection each: at 64
    connections the engine threads queued for the pool and few reached the model at once."""
    rag = RagService(pg_store, embeddings)
    name = f"t-{uuid.uuid4().hex[:12]}"
    rag.index(corpus()[:4], name)
    try:
        rag.search("coffee", name)  # the first search of a collection checks it first
        pool = pg_store._pool
        before = pool.get_stats()["requests_num"]
        assert rag.search("coffee", name, top_k=2).total == 2
        assert pool.get_stats()["requests_num"] - before == 1
        assert collection_info(rag, name).queries == 2
    finally:
        pg_store.delete_collection(name)


def test_nul_characters_and_blank_text(rag: RagService, collection_name: str):
    doc = DocumentInput(id="nul", text="Zero\x00 bytes are\x00 gone.", metadata={"k": "a\x00b"})
    rag.index([doc], collection_name)
    [hit] = rag.search("zero bytes\x00", collection_name, top_k=1, filter={"k": "ab"}).results
    assert hit.text == "Zero bytes are gone." and hit.metadata == {"k": "ab"}
    chunked = rag.index_document(
        "nul2", "Text\x00 with NUL." * 50, collection_name, chunk_size=100, chunk_overlap=10
    )
    assert chunked.chunks > 1
    with pytest.raises(InvalidInput):
        rag.index([DocumentInput(text="\x00 \x00")], collection_name)
    with pytest.raises(InvalidInput):
        rag.index_document("blank", "   \n ", collection_name)


def source(number: int, text: str, score: float) -> ScoredPoint:
    return ScoredPoint(
        id=f"s{number}",
        document_id=f"s{number}",
        chunk_index=None,
        text=text,
        score=score,
        metadata={},
    )


def test_extractive_answer_cites_each_relevant_source_and_skips_unrelated_ones(
    embeddings: LocalMiniLMProvider,
):
    question = "When was the Eiffel Tower in Paris completed?"
    qv = embeddings.embed([question]).vectors[0]

    def embed(texts):
        return embeddings.embed(list(texts)).vectors

    sources = [
        source(1, "The Eiffel Tower stands in Paris. It is made of wrought iron.", 0.62),
        source(2, "Construction of the Eiffel Tower was completed in 1889.", 0.60),
        source(3, "Bananas are rich in potassium. They grow in the tropics.", 0.05),
    ]
    answer = extractive_answer(qv, sources, embed)
    assert "completed in 1889. [2]" in answer
    assert "[1]" in answer and answer.index("[1]") < answer.index("[2]")  # source order
    assert "[3]" not in answer and "Bananas" not in answer
    assert extractive_answer(qv, [source(1, "...", 0.5)], embed) == ""


def test_searches_awaited_on_one_loop_share_model_batches(store: VectorStore, collection_name: str):
    """FastAPI awaits rag/search's embedding on its event loop: concurrent searches meet in
    the model's queue (in a thread each, they reached it a few at a time)."""
    runtime = InferenceRuntime(engine_settings())
    rag = RagService(store, LocalMiniLMProvider(runtime))
    assert rag.awaitable
    rag.index(corpus(), collection_name)
    questions = list(QUESTIONS)[:16]
    expected = [[h.id for h in rag.search(q, collection_name, top_k=3).results] for q in questions]

    def batches() -> float:
        counted = runtime.metrics.registry.get_sample_value(
            "inference_batch_size_count", {"model": "all-MiniLM-L6-v2"}
        )
        return counted or 0.0

    async def search_all() -> list[list[str]]:
        outcomes = await asyncio.gather(
            *(rag.search_async(q, collection_name, top_k=3) for q in questions)
        )
        return [[h.id for h in outcome.results] for outcome in outcomes]

    before = batches()
    assert asyncio.run(search_all()) == expected
    assert batches() - before < len(questions) / 2
    assert collection_info(rag, collection_name).queries == 2 * len(questions)
    with pytest.raises(NotFound):
        asyncio.run(rag.search_async("coffee", collection_name + "-absent"))
