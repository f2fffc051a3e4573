"""The text-generation provider interface and its result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from backends.core.usage import Usage


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    model: str
    provider: str
    finish_reason: str | None
    usage: Usage | None


@runtime_checkable
class LLMProvider(Protocol):
    """Synchronous, thread-safe text generation."""

    provider: str
    default_model: str

    def complete(
        self,
        prompt: str,
        *,
        system: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Completion:
        """Answer ``prompt`` (``model`` None = the provider's default); domain errors on failure."""
        ...
