"""Refusals a schema-valid request may still get: declared per operation (`Operation.refusals`).

A JSON Schema cannot say that a prompt is too long for the model that will answer it, so
such an answer is declared here, rendered into the spec (`x-refusals` and the status's
description), and the conformance check accepts exactly it for a schema-valid request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared_schemas.errors import STATUS_BY_CODE, ErrorCode

# Fewest answer tokens a prompt must leave in a model's context; fewer and it is refused.
MIN_ANSWER_TOKENS = 16


@dataclass(frozen=True, slots=True)
class Refusal:
    """An error answer to a schema-valid request: its status, error code, detail type, when."""

    code: ErrorCode
    detail_type: str  # every entry of `error.details` has this `type`
    when: str

    @property
    def status(self) -> int:
        return STATUS_BY_CODE[self.code]

    def as_extension(self) -> dict[str, Any]:
        """The operation's `x-refusals` entry in the spec."""
        return {
            "status": self.status,
            "code": self.code,
            "detail_type": self.detail_type,
            "when": self.when,
        }


CONTEXT_LENGTH = Refusal(
    code="validation_error",
    detail_type="context_length",
    when=(
        "the prompt (with its system text and any retrieved context the caller may not "
        f"shorten) leaves fewer than {MIN_ANSWER_TOKENS} tokens of the answering model's "
        "context window for the answer (a small local model)"
    ),
)
