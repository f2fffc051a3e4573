"""A cacheable request's log payload: sanitised once per distinct body, the same row as before."""

from __future__ import annotations

from pydantic import BaseModel

from backends.core.api.api_request import ApiRequest
from backends.core.persistence import log_notes
from backends.core.persistence.cache_keys import request_hash
from backends.core.persistence.log_notes import LogNotes, RequestFacts, request_record
from backends.core.persistence.sanitize import EncodedJson, sanitize_payload
from shared_schemas.embeddings import EmbeddingRequest
from shared_schemas.operations import OPERATIONS

EMBED = next(op for op in OPERATIONS if op.path == "/api/v1/embeddings/generate")


class WithSecret(BaseModel):
    text: str
    api_key: str


def _row_payload(body: BaseModel, *, hashed: bool) -> object:
    notes = LogNotes(endpoint=EMBED.path, request=ApiRequest(EMBED, body))
    if hashed:
        notes.request_hash = request_hash(body)
    facts = RequestFacts(
        method="POST", path=EMBED.path, status=200, duration_ms=1.0, request_id="r1",
        headers={}, peer="127.0.0.1",
    )  # fmt: skip
    return request_record("fastapi", notes, facts).request_payload


def test_one_body_is_sanitised_once_and_its_rows_are_unchanged() -> None:
    body = EmbeddingRequest(text="the same text, twice")
    first = _row_payload(body, hashed=True)
    again = _row_payload(EmbeddingRequest(text="the same text, twice"), hashed=True)
    assert again is first  # kept, not dumped and sanitised again
    assert isinstance(first, EncodedJson)
    assert first == sanitize_payload(body.model_dump(mode="json"))
    assert first == _row_payload(body, hashed=False)  # what an unhashed request logs


def test_kept_payloads_are_per_body_and_model_and_still_redacted() -> None:
    one = _row_payload(EmbeddingRequest(text="one"), hashed=True)
    other = _row_payload(EmbeddingRequest(text="other"), hashed=True)
    assert one == {"text": "one", "model": None}
    assert other == {"text": "other", "model": None}
    secret = WithSecret(text="one", api_key="sk-live-1")
    for _ in range(2):
        row = _row_payload(secret, hashed=True)
        assert row == {"text": "one", "api_key": "[redacted]"}
        assert isinstance(row, EncodedJson) and "sk-live-1" not in row.text


def test_the_kept_payloads_stay_bounded() -> None:
    for n in range(log_notes.SANITIZED_BODIES + 10):
        _row_payload(EmbeddingRequest(text=f"text {n}"), hashed=True)
    assert len(log_notes._SANITIZED) <= log_notes.SANITIZED_BODIES
