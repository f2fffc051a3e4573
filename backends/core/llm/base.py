"""The text-generation provider interface and its result."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from backends.core.usage import Usage

# Source text one RAG prompt may carry for a hosted model (whole documents may be 100k
# characters and top_k 20; hosted contexts hold far more, but cost grows with it).
HOSTED_CONTEXT_CHARS = 24_000


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

    @property
    def max_context_chars(self) -> int:
        """Characters of retrieved sources a RAG prompt may carry (the context bounds it)."""
        ...

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

    def stream(
        self,
        prompt: str,
        *,
        system: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Iterator[str]:
        """The answer's text pieces as the model produces them (``complete``'s arguments).

        Errors the provider reports before generating (unknown model, refused request)
        raise here, before the first piece; closing the iterator early ends the generation.
        """
        ...
