"""Every contract operation, fed its own first example, answers with the contract's model."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import BaseModel

from backends.core.api.api_request import ApiResult, RawResult
from backends.core.api.flow import RequestFlow
from backends.core.errors import NotFound
from shared_schemas import rag_collections, rag_search
from shared_schemas import transcription as tr
from shared_schemas import transcription_tools as tt
from shared_schemas.operations import OPERATIONS, Operation, by_id
from tests.api.examples import RAG_EXAMPLE_COLLECTION, example_request

# /ready belongs to each backend; /analysis/generate needs an LLM (tests/api/test_api_rules.py).
UNDER_TEST = [
    op for op in OPERATIONS if op.operation_id not in {"health_ready", "analysis_generate"}
]
NEEDS_INDEXED_EXAMPLES = {"rag_search", "rag_query", "rag_delete_collection"}


def index_examples(api: RequestFlow, wav: bytes) -> None:
    """Index the /index and /index-document examples (both write the example collection)."""
    for operation_id in ("rag_index", "rag_index_document"):
        api.run(example_request(by_id()[operation_id], wav))


def assert_matches_contract(operation: Operation, result: ApiResult) -> None:
    if isinstance(result, RawResult):
        assert result.media_type in operation.extra_response_content_types
        assert result.content
        return
    assert isinstance(result, BaseModel), f"{operation.operation_id} streamed"
    allowed = [operation.response_model, *operation.alternative_response_models]
    assert type(result) in allowed, f"{operation.operation_id} answered {type(result).__name__}"
    # What a backend sends is the JSON dump: it must validate as the contract model again.
    type(result).model_validate_json(result.model_dump_json())


def _srt(result: ApiResult) -> None:
    # The transcribe example asks for srt: numbered cues with timings, the words spoken.
    assert isinstance(result, RawResult)
    assert result.media_type == tr.TRANSCRIPT_MEDIA_TYPES["srt"]
    text = result.content.decode()
    assert text.startswith("1\n00:00:00,000 --> ")
    assert "hello" in text.lower()


def _json_transcript(result: ApiResult) -> None:
    assert isinstance(result, tr.TranscriptionResponse)
    assert "hello" in result.text.lower()
    assert result.language == "en" and result.duration > 0.5
    assert (result.provider, result.model) == ("local", "whisper-base")


def _converted_wav(result: ApiResult) -> None:
    # The convert example: wav, 16 kHz, mono.
    assert isinstance(result, RawResult) and result.media_type == tt.CONVERT_MEDIA_TYPES["wav"]
    header = result.content
    assert header[:4] == b"RIFF" and header[8:12] == b"WAVE"
    assert int.from_bytes(header[22:24], "little") == 1
    assert int.from_bytes(header[24:28], "little") == 16000


def _search_hits(result: ApiResult) -> None:
    assert isinstance(result, rag_search.SearchResponse)
    assert result.total == len(result.results) >= 1
    assert all(hit.metadata["source"] == "handbook.pdf" for hit in result.results)
    assert result.results[0].document_id == "handbook" and result.results[0].chunk_index == 0


def _extractive_answer(result: ApiResult) -> None:
    assert isinstance(result, rag_search.QueryResponse)
    assert result.provider == "extractive" and result.usage is None
    assert result.sources and "Refunds" in result.answer


def _deleted(result: ApiResult) -> None:
    assert isinstance(result, rag_collections.DeleteCollectionResponse)
    assert result.name == RAG_EXAMPLE_COLLECTION and result.chunks_deleted >= 3


def _languages_by_code(result: ApiResult) -> None:
    assert isinstance(result, tt.LanguagesResponse)
    codes = [language.code for language in result.languages]
    assert codes == sorted(codes) and "en" in codes


# Beyond the schema: what the example's answer must say.
CHECKS: dict[str, Callable[[ApiResult], None]] = {
    "transcription_transcribe": _srt,
    "transcription_transcribe_base64": _json_transcript,
    "transcription_convert": _converted_wav,
    "rag_search": _search_hits,
    "rag_query": _extractive_answer,
    "rag_delete_collection": _deleted,
    "transcription_languages": _languages_by_code,
}


@pytest.mark.parametrize("operation", UNDER_TEST, ids=lambda op: op.operation_id)
def test_example_answers_with_the_contract_model(
    api: RequestFlow, speech_wav: bytes, operation: Operation
) -> None:
    if operation.operation_id in NEEDS_INDEXED_EXAMPLES:
        index_examples(api, speech_wav)
    result = api.run(example_request(operation, speech_wav))
    assert_matches_contract(operation, result)
    check = CHECKS.get(operation.operation_id)
    if check is not None:
        check(result)


def test_delete_then_delete_again_is_not_found(api: RequestFlow, speech_wav: bytes) -> None:
    index_examples(api, speech_wav)
    delete = example_request(by_id()["rag_delete_collection"], speech_wav)
    api.run(delete)
    with pytest.raises(NotFound):
        api.run(delete)
