"""The local LLM: the packaged SmolLM2-135M-Instruct GGUF, really run by llama.cpp.

Generations are short (16-48 tokens, temperature 0 so greedy and repeatable): a 135M model
on 2 threads makes them in well under a second each.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from backends.core.analysis.service import AnalysisService
from backends.core.embeddings.local import LocalMiniLMProvider
from backends.core.embeddings.registry import EmbeddingRegistry
from backends.core.engine import Engine
from backends.core.errors import InvalidInput, ProviderUnavailable, UnknownModel
from backends.core.inference.runtime import InferenceRuntime
from backends.core.llm.factory import build_llm_provider
from backends.core.llm.local import LocalLlamaProvider, packaged_model_path
from backends.core.llm.openai_chat import OpenAIChatProvider
from backends.core.rag import DocumentInput, RagService
from backends.core.vectorstore.qdrant_store import QdrantStore
from tests.core.engine_fixtures import SECRET_KEY, engine_settings

MODEL = "SmolLM2-135M-Instruct"
RAG_DOCUMENTS = [
    DocumentInput(
        id="press",
        text="Johannes Gutenberg built the first printing press with movable type in Mainz "
        "around 1440.",
    ),
    DocumentInput(
        id="refunds",
        text="Refunds are issued within 14 days after the returned item arrives at our warehouse.",
    ),
    DocumentInput(id="cats", text="Cats are small pets that purr when they are content."),
]


@pytest.fixture(scope="module")
def llm() -> LocalLlamaProvider:
    provider = build_llm_provider(engine_settings(llm_provider="local"))
    assert isinstance(provider, LocalLlamaProvider)
    return provider


def test_the_packaged_model_is_the_default_without_keys() -> None:
    settings = engine_settings(llm_provider=None)
    assert settings.resolved_llm_provider == "local"
    provider = build_llm_provider(settings)
    assert isinstance(provider, LocalLlamaProvider)
    assert provider.model_path == packaged_model_path()
    assert provider.default_model == MODEL


def test_an_openai_key_makes_openai_the_default() -> None:
    settings = engine_settings(llm_provider=None, openai_api_key=SECRET_KEY)
    assert isinstance(build_llm_provider(settings), OpenAIChatProvider)


def test_extractive_means_no_llm() -> None:
    assert build_llm_provider(engine_settings(llm_provider="extractive")) is None


def test_a_missing_model_file_fails_at_start(tmp_path: Path) -> None:
    settings = engine_settings(llm_provider="local", local_llm_model_path=tmp_path / "no.gguf")
    with pytest.raises(ProviderUnavailable, match="LOCAL_LLM_MODEL_PATH"):
        build_llm_provider(settings)


def test_short_factual_answer(llm: LocalLlamaProvider) -> None:
    completion = llm.complete(
        "What is the capital of France? Answer in one word.", max_tokens=16, temperature=0
    )
    assert "Paris" in completion.text
    assert (completion.provider, completion.model) == ("local", MODEL)
    assert completion.finish_reason in ("stop", "length")
    assert completion.usage is not None
    assert 0 < completion.usage.completion_tokens <= 16
    assert completion.usage.prompt_tokens > 10  # the chat template's tokens count too


def test_the_repeat_penalty_keeps_a_list_from_looping(llm: LocalLlamaProvider) -> None:
    # without the penalty (1.0) the model goes on "8. Monday, 9. Tuesday, ..." to max_tokens
    completion = llm.complete("List the days of the week.", max_tokens=96, temperature=0)
    assert "Sunday" in completion.text
    assert completion.text.count("Monday") == 1, completion.text
    assert completion.finish_reason == "stop"


def test_generate_works_offline_through_the_analysis_service(llm: LocalLlamaProvider) -> None:
    analysis = AnalysisService(EmbeddingRegistry(engine_settings()), llm)
    completion = analysis.generate(
        "Name one primary colour.", context="Reply briefly.", max_tokens=16, temperature=0
    )
    assert completion.text and completion.provider == "local"


def test_an_unknown_model_is_404(llm: LocalLlamaProvider) -> None:
    with pytest.raises(UnknownModel) as caught:
        llm.complete("hello", model="gpt-4o-mini")
    assert caught.value.status_code == 404
    assert MODEL in caught.value.message
    assert llm.complete("hi", model=MODEL, max_tokens=4, temperature=0).model == MODEL


def test_a_prompt_longer_than_the_context_is_422(llm: LocalLlamaProvider) -> None:
    with pytest.raises(InvalidInput) as caught:
        llm.complete("word " * 3000, max_tokens=4)
    assert caught.value.status_code == 422
    assert "LOCAL_LLM_CONTEXT_TOKENS" in caught.value.message
    with pytest.raises(InvalidInput):
        list(llm.stream("word " * 3000, max_tokens=4))


def test_the_answer_is_cut_to_what_the_context_leaves(llm: LocalLlamaProvider) -> None:
    # 1900 words is ~1900 tokens of a 2048-token context: max_tokens=1000 cannot all fit
    completion = llm.complete("Repeat after me: " + "go " * 1900, max_tokens=1000, temperature=0)
    assert completion.usage is not None
    total = completion.usage.prompt_tokens + completion.usage.completion_tokens
    assert total <= llm.context_tokens


def test_streamed_pieces_add_up_to_the_whole_answer(llm: LocalLlamaProvider) -> None:
    prompt = "Write one sentence about the sea."
    whole = llm.complete(prompt, max_tokens=24, temperature=0).text
    pieces = list(llm.stream(prompt, max_tokens=24, temperature=0))
    assert len(pieces) > 3
    assert "".join(pieces).strip() == whole


def test_a_finished_stream_holds_the_whole_completion(llm: LocalLlamaProvider) -> None:
    # llama.cpp's stream has no usage: the counts come from its context, and must agree
    prompt = "Write one sentence about the sea."
    whole = llm.complete(prompt, max_tokens=24, temperature=0)
    stream = llm.stream(prompt, max_tokens=24, temperature=0)
    assert stream.completion is None
    pieces = list(stream)
    assert stream.completion is not None
    assert stream.completion.text == "".join(pieces).strip() == whole.text
    assert stream.completion.usage == whole.usage
    assert stream.completion.finish_reason == whole.finish_reason


def test_generations_run_in_the_runtimes_queue() -> None:
    settings = engine_settings(llm_provider="local")
    runtime = InferenceRuntime(settings)
    try:
        llm = build_llm_provider(settings, runtime)
        assert isinstance(llm, LocalLlamaProvider)
        llm.complete("hi", max_tokens=2, temperature=0)
        list(llm.stream("hi", max_tokens=2, temperature=0))
        rendered = runtime.metrics.render().decode()
        batches = f'batch_size_count{{model="{llm.name}"}} 2.0'
        assert batches in rendered, rendered
    finally:
        runtime.close()


def test_the_same_request_gives_the_same_answer(llm: LocalLlamaProvider) -> None:
    # without a KV-cache reset the repeat reused the cached prompt and answered differently
    llm.complete("What is the capital of France?", max_tokens=4, temperature=0)
    first = llm.complete("Name a colour.", max_tokens=16, temperature=0).text
    assert llm.complete("Name a colour.", max_tokens=16, temperature=0).text == first


def test_a_stream_checks_the_model_before_the_first_piece(llm: LocalLlamaProvider) -> None:
    with pytest.raises(UnknownModel):
        llm.stream("hello", model="other")


def test_an_abandoned_stream_frees_the_model(llm: LocalLlamaProvider) -> None:
    stream = llm.stream("Count from one to fifty.", max_tokens=200, temperature=0)
    next(stream)
    stream.close()
    assert llm.complete("hi", max_tokens=4, temperature=0).text


def test_concurrent_generations_are_serialised_and_both_answer(llm: LocalLlamaProvider) -> None:
    prompt = "What is the capital of France? Answer in one word."
    expected = llm.complete(prompt, max_tokens=16, temperature=0).text
    answers: list[str] = []
    errors: list[BaseException] = []

    def generate() -> None:
        try:
            answers.append(llm.complete(prompt, max_tokens=16, temperature=0).text)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=generate) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    # one llama.cpp context shared without the lock garbles or crashes; with it, each
    # greedy answer is the same as when alone
    assert answers == [expected] * 3


def test_rag_answers_from_the_sources_and_cites_them(
    llm: LocalLlamaProvider, tmp_path: Path
) -> None:
    store = QdrantStore(path=tmp_path / "qdrant")
    store.ensure_schema()
    runtime = InferenceRuntime(engine_settings())
    try:
        rag = RagService(store, LocalMiniLMProvider(runtime), llm)
        rag.index(RAG_DOCUMENTS, "facts")
        outcome = rag.query(
            "Who built the first printing press with movable type?",
            "facts",
            top_k=2,
            temperature=0,
            max_tokens=48,
        )
    finally:
        store.close()
        runtime.close()
    assert (outcome.provider, outcome.model) == ("local", MODEL)
    assert outcome.sources[0].document_id == "press"
    assert "Gutenberg" in outcome.answer
    assert "[1]" in outcome.answer and "[2]" not in outcome.answer, outcome.answer
    assert outcome.usage is not None and outcome.usage.completion_tokens > 0


def test_engine_readiness_names_the_local_model() -> None:
    engine = Engine(engine_settings(llm_provider="local"), "test")
    check = engine.readiness()["llm"]
    assert (check.ok, check.detail, check.required) == (True, f"local: {MODEL}", False)
