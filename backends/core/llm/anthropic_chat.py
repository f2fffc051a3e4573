"""Text generation through the anthropic SDK's Messages API."""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from backends.core.errors import UpstreamError
from backends.core.llm.base import HOSTED_CONTEXT_CHARS, Completion, ContextWindow, GenerationStream
from backends.core.openai_errors import map_sdk_error
from backends.core.usage import Usage

if TYPE_CHECKING:
    import anthropic

logger = logging.getLogger(__name__)

DEFAULT_ANTHROPIC_MODEL = "claude-haiku-4-5"
# Anthropic's stop reasons in the contract's (OpenAI's) words.
_FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}


@contextmanager
def anthropic_errors(operation: str, *, secret: str | None = None) -> Iterator[None]:
    """Run an SDK call; re-raise its failures as domain errors without the SDK's chain."""
    import anthropic

    try:
        yield
    except anthropic.AnthropicError as exc:
        mapped = map_sdk_error(
            exc,
            anthropic,
            where=f"Anthropic provider ({operation})",
            key_variable="ANTHROPIC_API_KEY",
            secret=secret,
        )
        logger.warning("%s: %s", mapped.code, mapped.message)
        raise mapped from None


class AnthropicChatProvider:
    """Claude through the Messages API; build it with build_llm_provider (never keyless)."""

    provider = "anthropic"
    max_context_chars = HOSTED_CONTEXT_CHARS
    context_window: ContextWindow | None = None  # the character bound suffices

    def __init__(
        self,
        client: anthropic.Anthropic,
        *,
        default_model: str = DEFAULT_ANTHROPIC_MODEL,
        default_max_tokens: int = 1000,
        secret: str | None = None,
    ) -> None:
        self._client = client
        self.default_model = default_model
        self._default_max_tokens = default_max_tokens
        self._secret = secret

    def complete(
        self,
        prompt: str,
        *,
        system: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Completion:
        arguments = self._arguments(prompt, system, model, max_tokens)
        with anthropic_errors("messages", secret=self._secret):
            response = self._client.messages.create(**arguments)
        text = "".join(block.text for block in response.content if block.type == "text")
        if not response.content:
            raise UpstreamError("Anthropic provider (messages) returned no content")
        stop = response.stop_reason
        return Completion(
            text=text,
            model=response.model or arguments["model"],
            provider=self.provider,
            finish_reason=_FINISH_REASONS.get(stop, stop) if stop else None,
            usage=Usage(
                prompt_tokens=response.usage.input_tokens,
                completion_tokens=response.usage.output_tokens,
            ),
        )

    def stream(
        self,
        prompt: str,
        *,
        system: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> GenerationStream:
        """Text pieces of a streamed message (its ``text_delta`` events)."""
        arguments = self._arguments(prompt, system, model, max_tokens)
        with anthropic_errors("messages", secret=self._secret):
            events = self._client.messages.create(**arguments, stream=True)
        return GenerationStream(self._pieces(events, arguments["model"]))

    def _pieces(self, events: Any, model: str) -> Generator[str, None, Completion]:
        pieces: list[str] = []
        stop: str | None = None
        prompt_tokens = completion_tokens = 0
        with anthropic_errors("messages", secret=self._secret), events:
            for event in events:
                if event.type == "message_start":
                    model = event.message.model or model
                    prompt_tokens = event.message.usage.input_tokens
                elif event.type == "message_delta":  # the totals, at the end
                    stop = event.delta.stop_reason or stop
                    completion_tokens = event.usage.output_tokens
                elif event.type == "content_block_delta":
                    delta = event.delta
                    if delta.type == "text_delta" and delta.text:
                        pieces.append(delta.text)
                        yield delta.text
        return Completion(
            text="".join(pieces),
            model=model,
            provider=self.provider,
            finish_reason=_FINISH_REASONS.get(stop, stop) if stop else None,
            usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens),
        )

    def _arguments(
        self, prompt: str, system: str | None, model: str | None, max_tokens: int | None
    ) -> dict[str, Any]:
        # No temperature: the Messages API of anthropic SDK 2.x has no sampling parameters
        # (its models choose their own), so a request's temperature does not apply here.
        arguments: dict[str, Any] = {
            "model": model or self.default_model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens or self._default_max_tokens,
        }
        if system:
            arguments["system"] = system
        return arguments
