"""Constrained types and base classes shared by every group of the contract.

Patterns are written so Python ``re``, Rust ``regex`` (pydantic-core) and ECMA-262 (JSON
Schema validators, schemathesis) read them identically: no lookarounds, no ``\\s``/``\\S``
(each engine has its own whitespace set), explicit character classes only.
"""

from __future__ import annotations

from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

# Exactly the characters Python's str.isspace() accepts, so "matches" means text.strip() != "".
WHITESPACE_CLASS = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NON_BLANK_PATTERN = rf"[^{WHITESPACE_CLASS}]"
"""Unanchored: the value holds at least one non-whitespace character."""

COLLECTION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$"
DOCUMENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$"

MAX_TEXT_LENGTH = 50_000
DEFAULT_COLLECTION = "default"


def non_blank(max_length: int) -> StringConstraints:
    """Constraints for free text that must carry content: 1..max_length chars, not all blank."""
    return StringConstraints(min_length=1, max_length=max_length, pattern=NON_BLANK_PATTERN)


Text = Annotated[str, non_blank(MAX_TEXT_LENGTH)]
"""Free text with content, at most 50 000 characters."""

CollectionName = Annotated[
    str, StringConstraints(min_length=1, max_length=63, pattern=COLLECTION_PATTERN)
]
DocumentId = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=DOCUMENT_ID_PATTERN)
]
ModelName = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=MODEL_NAME_PATTERN)
]
ProviderName = Annotated[str, StringConstraints(min_length=1, max_length=64)]

MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
MetadataValue = Annotated[str, StringConstraints(max_length=1000)] | int | float | bool | None
Metadata = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=32)]
"""Flat key/value metadata: at most 32 keys of 1..64 chars, string values up to 1000 chars."""

MODEL_FIELD_DESCRIPTION = (
    "Model id; absent (or null) picks the configured default. An id no provider here "
    "serves answers 404 not_found (OpenAI's model_not_found); a known hosted model whose "
    "provider is not configured answers 503 service_unavailable."
)
PROVIDER_DESCRIPTION = 'Provider that produced the result, e.g. "local", "openai", "extractive".'
RESULT_MODEL_DESCRIPTION = 'Model that produced the result, e.g. "all-MiniLM-L6-v2".'


class RequestModel(BaseModel):
    """Base of every JSON request body: what the schema rejects, the model rejects.

    Unknown fields are a 422 (as in the peer implementation). Strict types, so ``true`` is
    not a number and ``"5"`` not an integer; JSON Schema counts 5.0 as an integer, so whole
    floats are let through to int fields. Infinite numbers (``1e400``) are refused.
    """

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _whole_float_to_int(cls, value: Any, info: ValidationInfo) -> Any:
        whole = isinstance(value, float) and value.is_integer()
        if whole and info.field_name and _accepts_int(cls.model_fields[info.field_name].annotation):
            return int(value)
        return value


class FormModel(RequestModel):
    """Base of multipart form bodies: every form field arrives as text, so types coerce."""

    model_config = ConfigDict(strict=False)


def _accepts_int(annotation: Any) -> bool:
    """Whether a field's type is int, possibly Annotated or optional (not an int/float union)."""
    if get_origin(annotation) is Annotated:
        return _accepts_int(get_args(annotation)[0])
    if get_origin(annotation) in (Union, UnionType):
        members = [_unwrap(member) for member in get_args(annotation)]
        return int in members and float not in members
    return annotation is int


def _unwrap(annotation: Any) -> Any:
    return get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation


class ResponseModel(BaseModel):
    """Base of every response body: the schema lists every field as present (defaults too)."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


class Usage(ResponseModel):
    """Token accounting, OpenAI style (local providers count their own tokens)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"prompt_tokens": 12, "completion_tokens": 48, "total_tokens": 60}]
        }
    )

    prompt_tokens: int = Field(ge=0, description="Tokens in the input.")
    completion_tokens: int = Field(
        default=0, ge=0, description="Tokens generated (0 for embeddings)."
    )
    total_tokens: int = Field(ge=0, description="prompt_tokens + completion_tokens.")
