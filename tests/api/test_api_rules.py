"""Error mapping, cache identities, path validation and the readiness verdict."""

from __future__ import annotations

import httpx
import pytest
import respx
from pydantic import BaseModel

from backends.core.api.api_request import ApiRequest
from backends.core.api.cache_identity import CacheIdentities
from backends.core.api.flow import NotHandled, RequestFlow
from backends.core.api.handlers.health import Check, ready_response
from backends.core.api.validation import validate_path
from backends.core.engine import Engine
from backends.core.errors import InvalidInput, NotFound, ProviderUnavailable
from backends.core.persistence.log_notes import LogNotes
from shared_schemas.embeddings import EmbeddingRequest
from shared_schemas.generation import GenerateResponse
from shared_schemas.operations import OPERATIONS, by_id
from shared_schemas.transcription import TranscribeBase64Request, TranscribeForm
from tests.api.examples import example_request, request_for
from tests.core.engine_fixtures import BASE_URL, SECRET_KEY, engine_settings

CACHEABLE = {
    "embeddings_generate",
    "embeddings_batch",
    "embeddings_similarity",
    "analysis_analyze",
    "analysis_classify",
    "analysis_summarize",
    "analysis_sentiment",
    "analysis_keywords",
}


def identity_of(flow: RequestFlow, request: ApiRequest) -> str | None:
    return CacheIdentities(flow.engine.embedding_registry).identity(request)


GENERATE = {"prompt": "Write one sentence about search.", "max_tokens": 20}


def test_generate_without_an_llm_is_503(api: RequestFlow) -> None:
    with pytest.raises(ProviderUnavailable) as caught:
        api.run(example_request(by_id()["analysis_generate"], b""))
    assert caught.value.status_code == 503 and "LLM" in caught.value.message


@pytest.mark.parametrize("usage", [True, False], ids=["usage", "no-usage"])
def test_generate_with_a_hosted_llm(openai_mock: respx.MockRouter, usage: bool) -> None:
    reply = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Fast."},
                "finish_reason": "stop",
            }
        ],
    }
    if usage:
        reply["usage"] = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    openai_mock.post("/chat/completions").mock(return_value=httpx.Response(200, json=reply))
    settings = engine_settings(
        openai_api_key=SECRET_KEY,
        openai_base_url=BASE_URL,
        openai_max_retries=0,
        llm_provider="openai",
    )
    result = RequestFlow(Engine(settings, "api-tests"), cache_enabled=True).run(
        request_for("analysis_generate", GENERATE)
    )
    assert isinstance(result, GenerateResponse)
    assert (result.text, result.provider, result.finish_reason) == ("Fast.", "openai", "stop")
    assert result.usage.total_tokens == (15 if usage else 0)


def test_unknown_collection_is_not_found(api: RequestFlow) -> None:
    with pytest.raises(NotFound):
        api.run(request_for("rag_search", {"query": "anything", "collection": "no-such-coll"}))
    missing = ApiRequest(by_id()["rag_delete_collection"], None, {"name": "no-such-coll"})
    with pytest.raises(NotFound):
        api.run(missing)


def test_health_ready_is_left_to_the_backend(api: RequestFlow) -> None:
    with pytest.raises(NotHandled, match="ready_response"):
        api.run(ApiRequest(by_id()["health_ready"]))


def test_cache_identity_names_local_models_only(engine: Engine, speech_wav: bytes) -> None:
    api = RequestFlow(engine, cache_enabled=True)
    identities = {
        op.operation_id: identity_of(api, example_request(op, speech_wav)) for op in OPERATIONS
    }
    named = {op: identity for op, identity in identities.items() if identity is not None}
    assert set(named) == CACHEABLE
    assert named["embeddings_generate"] == "local/all-MiniLM-L6-v2"
    assert named["analysis_classify"] == "local/zero-shot-all-MiniLM-L6-v2"
    assert named["analysis_summarize"] == "local/extractive-centrality+all-MiniLM-L6-v2"
    assert named["analysis_sentiment"].startswith("local/vader-")
    assert named["analysis_keywords"].startswith("local/yake-")
    # analyze lists its parts in the order its answer's `model` does
    sentiment, keywords = named["analysis_sentiment"], named["analysis_keywords"]
    summary = "extractive-centrality+all-MiniLM-L6-v2"
    assert named["analysis_analyze"] == f"{sentiment},{summary},{keywords.removeprefix('local/')}"
    # stable: a second Api over the same configuration names the same models
    again = RequestFlow(engine, cache_enabled=True)
    for op in OPERATIONS:
        assert identity_of(again, example_request(op, speech_wav)) == identities[op.operation_id]


def test_cache_identity_of_an_analysis_matches_the_model_it_answers_with(api: RequestFlow) -> None:
    requests = [
        example_request(by_id()[operation_id], b"")
        for operation_id in ("analysis_sentiment", "analysis_classify", "analysis_analyze")
    ]
    reordered = {"text": "Great speed. Awful setup.", "analyses": ["keywords", "sentiment"]}
    requests.append(request_for("analysis_analyze", reordered))
    for request in requests:
        answered = api.run(request)
        assert isinstance(answered, BaseModel)
        body = answered.model_dump()
        assert identity_of(api, request) == f"{body['provider']}/{body['model']}"


def test_hosted_or_unknown_models_are_not_cacheable(api: RequestFlow) -> None:
    hosted = {"text": "hello", "model": "text-embedding-3-small"}
    assert identity_of(api, request_for("embeddings_generate", hosted)) is None
    assert (
        identity_of(api, request_for("analysis_sentiment", {"text": "hi", "model": "gpt-4o"}))
        is None
    )
    summary = {"text": "hello", "model": "extractive-centrality+text-embedding-3-small"}
    assert identity_of(api, request_for("analysis_summarize", summary)) is None
    only_sentiment = {"text": "hello", "analyses": ["sentiment"], "model": "text-embedding-3-small"}
    assert identity_of(api, request_for("analysis_analyze", only_sentiment)) is not None


def test_cache_identity_with_a_hosted_default_loads_nothing(speech_wav: bytes) -> None:
    settings = engine_settings(
        openai_api_key=SECRET_KEY, openai_base_url=BASE_URL, embedding_provider="openai"
    )
    engine = Engine(settings, "api-tests")
    api = RequestFlow(engine, cache_enabled=True)
    embed = request_for("embeddings_generate", {"text": "hello"})
    assert identity_of(api, embed) is None
    local = request_for("embeddings_generate", {"text": "hello", "model": "all-MiniLM-L6-v2"})
    assert identity_of(api, local) == "local/all-MiniLM-L6-v2"
    for op in OPERATIONS:
        identity_of(api, example_request(op, speech_wav))
    assert not engine.embedding_registry.local.loaded


def test_validate_path() -> None:
    delete = by_id()["rag_delete_collection"]
    assert validate_path(delete, {"name": "docs_1"}) == {"name": "docs_1"}
    for bad in ("bad name!", "", "x" * 64, "-leading", "docs\n"):
        with pytest.raises(InvalidInput) as caught:
            validate_path(delete, {"name": bad})
        assert caught.value.status_code == 422
        assert [d["loc"] for d in caught.value.details] == [["path", "name"]]
    with pytest.raises(InvalidInput):
        validate_path(delete, {})
    assert validate_path(by_id()["health_status"], {}) == {}


def test_ready_when_only_optional_checks_fail() -> None:
    ready = ready_response(
        {"postgres": Check(True, 1.5), "llm": Check(False, 0.0, "offline", required=False)}
    )
    assert (ready.ready, ready.status) == (True, "degraded")
    assert ready.checks["llm"].detail == "offline"
    all_ok = ready_response({"postgres": Check(True, 1.5), "redis": Check(True, 0.3)})
    assert (all_ok.ready, all_ok.status) == (True, "ok")


def test_not_ready_names_the_failed_required_checks() -> None:
    checks = {
        "postgres": Check(False, 3000.0, "timed out"),
        "redis": Check(True, 0.4),
        "vector_store": Check(False, 2.0, None),
        "llm": Check(False, 0.0, "offline", required=False),
    }
    with pytest.raises(ProviderUnavailable) as caught:
        ready_response(checks)
    assert caught.value.status_code == 503
    assert [d["loc"] for d in caught.value.details] == [
        ["checks", "postgres"],
        ["checks", "vector_store"],
    ]
    assert caught.value.details[0]["message"] == "timed out"


def test_engine_readiness_checks_feed_ready_response(engine: Engine) -> None:
    ready = ready_response(
        {name: Check(c.ok, 0.0, c.detail, c.required) for name, c in engine.readiness().items()}
    )
    assert ready.status == "degraded"  # the vector store is up; no LLM is configured
    assert ready.checks["vector_store"].ok and not ready.checks["llm"].ok


def test_the_logged_body_keeps_only_the_size_of_uploaded_bytes() -> None:
    """Each model's binary fields are found once; a model without any is dumped as it is."""
    form = TranscribeForm(file=b"RIFF" + bytes(96), language="en")
    based = TranscribeBase64Request(audio="UklGRiQAAAB=", filename="a.wav")
    plain = EmbeddingRequest(text="hello")
    ops = by_id()
    for _ in range(2):  # the second time from what was found the first
        logged = [
            ApiRequest(ops["transcription_transcribe"], form, {}, {}).loggable_body(),
            ApiRequest(ops["transcription_transcribe_base64"], based, {}, {}).loggable_body(),
            ApiRequest(ops["embeddings_generate"], plain, {}, {}).loggable_body(),
        ]
        assert logged == [
            {**form.model_dump(mode="json", exclude={"file"}), "file": "[100 bytes omitted]"},
            {**based.model_dump(mode="json", exclude={"audio"}), "audio": "[12 bytes omitted]"},
            plain.model_dump(mode="json"),
        ]


def test_prepare_notes_the_body_hash_of_a_cacheable_request_only(api: RequestFlow) -> None:
    """The log keeps a sanitised payload per body hash (log_notes): the hash noted must be
    the one the cache key is made of, and none for a request without a cache key."""
    notes = LogNotes()
    prepared = api.prepare(by_id()["embeddings_generate"], b'{"text": "hash me"}', {}, notes)
    assert prepared.cache_key is not None
    assert notes.request_hash == prepared.request_hash is not None
    uncached = LogNotes()
    body = b'{"prompt": "Write one sentence.", "max_tokens": 5}'
    assert api.prepare(by_id()["analysis_generate"], body, {}, uncached).cache_key is None
    assert uncached.request_hash is None
