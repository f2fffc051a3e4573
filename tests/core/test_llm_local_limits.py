"""The local LLM's limits: a generation deadline below the gateway's timeout, and prompts
fitted to the 2,048-token context (the packaged SmolLM2 GGUF, really run by llama.cpp)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from backends.core.analysis.service import AnalysisService
from backends.core.embeddings.local import LocalMiniLMProvider
from backends.core.embeddings.registry import EmbeddingRegistry
from backends.core.errors import InvalidInput
from backends.core.inference.runtime import InferenceRuntime
from backends.core.llm.factory import build_llm_provider
from backends.core.llm.local import LocalLlamaProvider
from backends.core.rag import DocumentInput, RagService
from backends.core.rag.answering import DEFAULT_SYSTEM_PROMPT, fit_prompt
from backends.core.vectorstore.base import ScoredPoint
from backends.core.vectorstore.qdrant_store import QdrantStore
from tests.core.engine_fixtures import engine_settings

# A generation that does not end by itself for long (600 tokens and on, 130 tokens/s on a
# quiet machine here, to the context's ~2,000): only a deadline stops it early.
ENDLESS = "Write a 5000-word essay on the history of Rome."
# The longest system_prompt /rag/query allows, 4,000 characters, here ~1,500 tokens (digits
# and punctuation are a token each): with the sources' old 4,096 characters (~800 tokens)
# it did not fit the 2,048-token context.
LONG_SYSTEM_PROMPT = ("Answer in the voice of a careful librarian who checks each claim. " * 30)[
    :2000
] + ("Rule 17b: cite [1]-[5]; no 3rd-party URLs, IDs or ZIPs (e.g. 90210). " * 30)[:2000]


def _local(**overrides: object) -> LocalLlamaProvider:
    provider = build_llm_provider(engine_settings(llm_provider="local", **overrides))
    assert isinstance(provider, LocalLlamaProvider)
    return provider


@pytest.fixture(scope="module")
def llm() -> LocalLlamaProvider:
    return _local()


@pytest.fixture(scope="module")
def quick() -> LocalLlamaProvider:
    """A provider whose generations stop after 2 s (loaded first: loading counts too)."""
    provider = _local(local_llm_deadline_s=2)
    provider.load()
    return provider


# --- the deadline ---------------------------------------------------------------------


def test_the_deadline_is_derived_from_the_gateways_timeout() -> None:
    assert engine_settings().resolved_local_llm_deadline_s == 45.0  # 3/4 of 60 s
    settings = engine_settings(GATEWAY_TIMEOUTS={"rag": 20.0}, GATEWAY_DEFAULT_TIMEOUT_S=90)
    assert settings.resolved_local_llm_deadline_s == 15.0  # the shortest generating group
    assert _local(GATEWAY_DEFAULT_TIMEOUT_S=8).deadline_s == 6.0


def test_a_deadline_at_or_above_the_gateways_timeout_does_not_start() -> None:
    with pytest.raises(ValidationError, match="LOCAL_LLM_DEADLINE_S=60 must be below"):
        engine_settings(local_llm_deadline_s=60)
    with pytest.raises(ValidationError, match="analysis and rag \\(30 s"):
        engine_settings(local_llm_deadline_s=40, GATEWAY_TIMEOUTS={"analysis": 30.0})
    assert engine_settings(local_llm_deadline_s=59).resolved_local_llm_deadline_s == 59


def test_a_long_generation_stops_at_the_deadline_with_length(quick: LocalLlamaProvider) -> None:
    completion = quick.complete(ENDLESS, max_tokens=4000, temperature=0)
    assert completion.finish_reason == "length"
    assert completion.text
    assert completion.usage is not None
    # 2 s is ~260 tokens here; without the deadline it runs to the context (~2,000)
    assert 0 < completion.usage.completion_tokens < 1000, completion.usage


def test_a_streamed_generation_ends_the_same_way(quick: LocalLlamaProvider) -> None:
    stream = quick.stream(ENDLESS, max_tokens=4000, temperature=0)
    pieces = list(stream)
    assert stream.completion is not None
    assert stream.completion.finish_reason == "length"
    assert stream.completion.text == "".join(pieces).strip()
    assert stream.completion.usage is not None
    assert 0 < stream.completion.usage.completion_tokens < 1000


def test_time_waiting_in_the_queue_counts(quick: LocalLlamaProvider) -> None:
    first = quick.stream(ENDLESS, max_tokens=4000, temperature=0)
    next(first)  # running: the second waits in the queue for about its whole deadline
    second = quick.stream(ENDLESS, max_tokens=4000, temperature=0)
    list(first)
    list(second)
    assert first.completion is not None and second.completion is not None
    assert second.completion.finish_reason == "length"
    assert first.completion.usage is not None and second.completion.usage is not None
    # the second had only what the first left of its 2 s (without counting the wait it
    # would generate as much as the first)
    assert second.completion.usage.completion_tokens * 2 < first.completion.usage.completion_tokens


# --- prompts fitted to the context ----------------------------------------------------


def _point(number: int, text: str) -> ScoredPoint:
    return ScoredPoint(
        id=f"p{number}",
        document_id=f"doc{number}",
        chunk_index=0,
        text=text,
        score=1.0 - number / 100,
        metadata={},
    )


def test_sources_are_dropped_and_cut_to_fit(llm: LocalLlamaProvider) -> None:
    sources = [
        _point(n, f"Fact {n}: " + "the archive keeps old maps safe. " * 120) for n in range(5)
    ]
    question = "What does the archive keep?"
    fitted = fit_prompt(question, sources, DEFAULT_SYSTEM_PROMPT, llm, 4000, 20_000)
    used = llm.chat_tokens(DEFAULT_SYSTEM_PROMPT, fitted.prompt)
    assert fitted.max_tokens is not None
    assert used + fitted.max_tokens <= llm.context_tokens
    assert fitted.max_tokens >= llm.context_tokens // 4  # the answer keeps its share
    assert used > llm.context_tokens // 2  # and the sources fill the rest
    assert 1 <= fitted.sources_shown < len(sources)  # the lowest ranked were dropped
    assert "[1] (document: doc0)" in fitted.prompt
    assert f"(document: doc{len(sources) - 1})" not in fitted.prompt
    assert fitted.prompt.endswith(f"Question: {question}\n\nAnswer:")
    # beside the longest system prompt the sources still get half of what is left
    fitted = fit_prompt(question, sources, LONG_SYSTEM_PROMPT, llm, 4000, 20_000)
    used = llm.chat_tokens(LONG_SYSTEM_PROMPT, fitted.prompt)
    assert fitted.max_tokens is not None and fitted.max_tokens >= 16
    assert used + fitted.max_tokens <= llm.context_tokens
    assert fitted.sources_shown == 1 and "[1] (document: doc0)" in fitted.prompt


def test_a_short_prompt_keeps_its_max_tokens(llm: LocalLlamaProvider) -> None:
    fitted = fit_prompt("Why?", [_point(1, "Because.")], DEFAULT_SYSTEM_PROMPT, llm, 64, 4096)
    assert (fitted.max_tokens, fitted.sources_shown) == (64, 1)


def test_a_question_that_leaves_no_room_is_a_documented_422(llm: LocalLlamaProvider) -> None:
    with pytest.raises(InvalidInput) as caught:
        fit_prompt("why " * 2500, [_point(1, "Because.")], DEFAULT_SYSTEM_PROMPT, llm, 64, 4096)
    assert caught.value.details[0]["type"] == "context_length"
    assert caught.value.details[0]["loc"] == ["body", "query"]


def test_rag_query_with_the_longest_system_prompt_is_answered(
    llm: LocalLlamaProvider, tmp_path: Path
) -> None:
    # test-deep found this a 422: the sources did not fit beside a ~4,000-character prompt
    store = QdrantStore(path=tmp_path / "qdrant")
    store.ensure_schema()
    runtime = InferenceRuntime(engine_settings())
    documents = [
        DocumentInput(id=f"maps{n}", text=f"Part {n}. " + "The archive keeps old maps. " * 150)
        for n in range(5)
    ]
    try:
        rag = RagService(store, LocalMiniLMProvider(runtime), llm)
        rag.index(documents, "archive")
        outcome = rag.query(
            "What does the archive keep?",
            "archive",
            top_k=5,
            system_prompt=LONG_SYSTEM_PROMPT,
            temperature=0,
            max_tokens=4000,
        )
    finally:
        store.close()
        runtime.close()
    assert outcome.provider == "local"
    assert 1000 < llm.text_tokens(LONG_SYSTEM_PROMPT) < 2000
    assert outcome.usage is not None
    assert outcome.usage.prompt_tokens + outcome.usage.completion_tokens <= llm.context_tokens


def test_generate_lowers_max_tokens_and_refuses_only_what_cannot_fit(
    llm: LocalLlamaProvider,
) -> None:
    analysis = AnalysisService(EmbeddingRegistry(engine_settings()), llm)
    completion = analysis.generate(
        "Repeat after me: " + "go " * 1900, max_tokens=4000, temperature=0
    )
    assert completion.usage is not None
    assert completion.usage.prompt_tokens + completion.usage.completion_tokens <= 2048
    with pytest.raises(InvalidInput) as caught:
        analysis.generate("Summarise this.", context="word " * 2100, max_tokens=16)
    assert caught.value.details[0]["type"] == "context_length"
