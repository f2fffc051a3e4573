"""The text-generation provider interface and its result."""

from __future__ import annotations

from collections.abc import Generator, Iterator
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


class GenerationStream(Iterator[str]):
    """One answer's text pieces as the model produces them, then the whole ``Completion``.

    Wraps a provider's generator that yields the pieces and returns the Completion; after
    the last piece ``completion`` holds it (text joined, finish reason, usage). ``close``
    ends the generation early (the client went away), freeing the model.
    """

    def __init__(self, pieces: Generator[str, None, Completion]) -> None:
        self._pieces = pieces
        self.completion: Completion | None = None

    def __next__(self) -> str:
        try:
            return next(self._pieces)
        except StopIteration as end:
            self.completion = end.value
            raise StopIteration from None

    def close(self) -> None:
        """Stop generating (a no-op once the answer is complete)."""
        self._pieces.close()


class ContextWindow(Protocol):
    """A model's context in tokens, and a safe bound on what a text takes of it."""

    context_tokens: int

    def text_tokens(self, text: str) -> int:
        """Tokens ``text`` takes (at most) with the model's tokenizer."""
        ...

    def chat_tokens(self, system: str | None, prompt: str) -> int:
        """Tokens (at most) the chat of ``system`` and ``prompt`` takes, template included."""
        ...


@runtime_checkable
class LLMProvider(Protocol):
    """Synchronous, thread-safe text generation."""

    provider: str
    default_model: str

    @property
    def max_context_chars(self) -> int:
        """Characters of retrieved sources a RAG prompt may carry (the context bounds it)."""
        ...

    @property
    def context_window(self) -> ContextWindow | None:
        """The model's context when a prompt must be fitted to it in tokens (the local model);
        None when ``max_context_chars`` is bound enough (hosted models hold 100k+ tokens)."""
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
    ) -> GenerationStream:
        """The answer's text pieces as the model produces them (``complete``'s arguments).

        Errors the provider reports before generating (unknown model, refused request, a
        full queue) raise here, before the first piece; closing the stream early ends the
        generation.
        """
        ...
