"""Contract rules the models enforce: non-blank text, bounds, strict types, patterns."""

from __future__ import annotations

import re
from typing import Any, get_args

import jsonschema_rs
import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from shared_schemas.analysis import ClassifyRequest, SentimentRequest
from shared_schemas.common import COLLECTION_PATTERN, NON_BLANK_PATTERN, CollectionName, Text
from shared_schemas.complexity import PreEstimateRequest
from shared_schemas.complexity_outcome import AdjustmentRequest
from shared_schemas.embeddings import BatchEmbeddingRequest, EmbeddingRequest, SimilarityRequest
from shared_schemas.errors import STATUS_BY_CODE, ErrorCode
from shared_schemas.languages import WHISPER_LANGUAGES, LanguageCode
from shared_schemas.rag import IndexDocumentRequest, IndexRequest
from shared_schemas.rag_search import QueryRequest, SearchRequest
from shared_schemas.transcription import TranscribeBase64Request


def _rejects(model: type[BaseModel], body: dict[str, Any]) -> bool:
    try:
        model.model_validate(body)
    except ValidationError:
        return True
    return False


@pytest.mark.parametrize("blank", ["", " ", "\t\n", "\u00a0\u3000", "\x1c\x1f", "\u2028 "])
def test_blank_text_is_a_validation_error(blank: str) -> None:
    assert _rejects(EmbeddingRequest, {"text": blank})
    assert _rejects(BatchEmbeddingRequest, {"texts": ["fine", blank]})
    assert _rejects(SearchRequest, {"query": blank})
    assert _rejects(PreEstimateRequest, {"title": blank})
    assert _rejects(ClassifyRequest, {"text": "ok", "categories": [blank]})


def test_text_with_content_passes() -> None:
    assert EmbeddingRequest.model_validate({"text": "  x  "}).text == "  x  "
    assert SentimentRequest.model_validate({"text": "\ufeff"}).text == "\ufeff"


def test_batch_and_list_bounds() -> None:
    assert not _rejects(BatchEmbeddingRequest, {"texts": ["t"] * 100})
    assert _rejects(BatchEmbeddingRequest, {"texts": ["t"] * 101})
    assert _rejects(BatchEmbeddingRequest, {"texts": []})
    assert _rejects(SimilarityRequest, {"text1": "a", "text2": ["b"] * 101})
    assert _rejects(SimilarityRequest, {"text1": "a", "text2": []})
    assert _rejects(IndexRequest, {"documents": [{"text": "d"}] * 101})
    assert _rejects(ClassifyRequest, {"text": "t", "categories": [f"c{i}" for i in range(51)]})
    assert _rejects(EmbeddingRequest, {"text": "x" * 50_001})


def test_numeric_bounds() -> None:
    doc = {"document_id": "d1", "text": "body"}
    assert not _rejects(IndexDocumentRequest, doc | {"chunk_overlap": 1000, "chunk_size": 100})
    assert _rejects(IndexDocumentRequest, doc | {"chunk_overlap": 1001})
    assert _rejects(IndexDocumentRequest, doc | {"chunk_size": 99})
    assert _rejects(SearchRequest, {"query": "q", "top_k": 0})
    assert _rejects(SearchRequest, {"query": "q", "top_k": 101})
    assert _rejects(QueryRequest, {"query": "q", "top_k": 21})
    assert _rejects(SearchRequest, {"query": "q", "score_threshold": 1.01})
    assert _rejects(AdjustmentRequest, {"pre_level": 0.5, "actual_level": 3})
    assert _rejects(AdjustmentRequest, {"pre_level": 1, "actual_level": 3, "estimated_hours": 0})


def test_unknown_field_is_rejected() -> None:
    assert _rejects(EmbeddingRequest, {"text": "t", "encoding_format": "float"})
    assert _rejects(IndexRequest, {"documents": [{"text": "t", "content": "x"}]})


def test_json_types_are_strict() -> None:
    assert SearchRequest.model_validate_json('{"query": "q", "top_k": 7.0}').top_k == 7
    assert QueryRequest.model_validate_json('{"query": "q", "max_tokens": 9.0}').max_tokens == 9
    for bad in ('"7"', "true", "7.5"):
        with pytest.raises(ValidationError):
            SearchRequest.model_validate_json(f'{{"query": "q", "top_k": {bad}}}')
    with pytest.raises(ValidationError):
        SearchRequest.model_validate_json('{"query": "q", "score_threshold": false}')
    with pytest.raises(ValidationError):
        EmbeddingRequest.model_validate_json('{"text": 42}')
    with pytest.raises(ValidationError):
        SearchRequest.model_validate_json('{"query": "q", "filter": {"n": 1e400}}')


def test_non_blank_pattern_agrees_across_regex_engines() -> None:
    # pydantic-core (Rust regex), JSON Schema validators (ECMA) and Python re must all agree
    # that a value is blank exactly when str.strip() empties it.
    rust = TypeAdapter(Text)
    ecma = jsonschema_rs.validator_for({"type": "string", "pattern": NON_BLANK_PATTERN})
    python = re.compile(NON_BLANK_PATTERN)
    probes = [chr(c) for c in range(0x3100)] + ["\ufeff", "\U0001f600", "\u180e"]
    for char in probes:
        expected = not char.isspace()
        try:
            rust.validate_python(char)
            rust_ok = True
        except ValidationError:
            rust_ok = False
        assert (rust_ok, ecma.is_valid(char), bool(python.search(char))) == (expected,) * 3, hex(
            ord(char)
        )


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("default", True),
        ("a", True),
        ("Support_docs-2", True),
        ("x" * 63, True),
        ("x" * 64, False),
        ("_hidden", False),
        ("-x", False),
        ("has space", False),
        ("support\n", False),
        ("", False),
    ],
)
def test_collection_name_pattern(name: str, valid: bool) -> None:
    ecma = jsonschema_rs.validator_for({"type": "string", "pattern": COLLECTION_PATTERN})
    assert ecma.is_valid(name) is valid
    try:
        TypeAdapter(CollectionName).validate_python(name)
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted is valid


def test_base64_audio_must_be_canonical() -> None:
    ok = {"audio": "UklGRg==", "filename": "a.wav"}
    assert not _rejects(TranscribeBase64Request, ok)
    for bad in ("UklGRg=", "UklG Rg==", "data:audio/wav;base64,UklGRg==", "Ukl\nGRg=="):
        assert _rejects(TranscribeBase64Request, ok | {"audio": bad}), bad


def test_languages_and_error_codes_are_complete() -> None:
    assert set(get_args(LanguageCode)) == set(WHISPER_LANGUAGES)
    assert len(WHISPER_LANGUAGES) == 99
    assert set(get_args(ErrorCode)) == set(STATUS_BY_CODE)
    assert STATUS_BY_CODE["validation_error"] == 422
    assert STATUS_BY_CODE["service_unavailable"] == 503
