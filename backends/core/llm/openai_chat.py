"""Text generation through the openai SDK's chat completions (any compatible server)."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from backends.core.errors import UpstreamError
from backends.core.llm.base import HOSTED_CONTEXT_CHARS, Completion, ContextWindow, GenerationStream
from backends.core.openai_errors import openai_errors, parsed
from backends.core.usage import Usage

if TYPE_CHECKING:
    import openai


class OpenAIChatProvider:
    """Chat completions; build it with build_llm_provider (never without a key)."""

    provider = "openai"
    max_context_chars = HOSTED_CONTEXT_CHARS
    context_window: ContextWindow | None = None  # the character bound suffices

    def __init__(
        self,
        client: openai.OpenAI,
        *,
        default_model: str,
        default_max_tokens: int = 1000,
        default_temperature: float = 0.7,
        secret: str | None = None,
    ) -> None:
        self._client = client
        self.default_model = default_model
        self._default_max_tokens = default_max_tokens
        self._default_temperature = default_temperature
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
        with openai_errors("chat completions", secret=self._secret):
            response = self._client.chat.completions.create(
                **self._arguments(prompt, system, model, max_tokens, temperature)
            )
            response = parsed(response, "chat completions")
        if not response.choices:
            raise UpstreamError("OpenAI-compatible provider (chat completions) returned no choices")
        choice = response.choices[0]
        usage = response.usage
        return Completion(
            text=choice.message.content or "",
            model=response.model or model or self.default_model,
            provider=self.provider,
            finish_reason=choice.finish_reason,
            usage=(
                Usage(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens)
                if usage is not None
                else None
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
        """Text pieces of a streamed chat completion (``stream: true`` upstream)."""
        arguments = self._arguments(prompt, system, model, max_tokens, temperature)
        with openai_errors("chat completions", secret=self._secret):
            chunks = self._client.chat.completions.create(
                **arguments, stream=True, stream_options={"include_usage": True}
            )
        return GenerationStream(self._pieces(chunks, arguments["model"]))

    def _pieces(self, chunks: Any, model: str) -> Generator[str, None, Completion]:
        pieces: list[str] = []
        finish_reason: str | None = None
        usage: Usage | None = None
        with openai_errors("chat completions", secret=self._secret), chunks:
            for chunk in chunks:
                model = chunk.model or model
                if chunk.usage is not None:  # the last chunk, asked for by include_usage
                    usage = Usage(
                        prompt_tokens=chunk.usage.prompt_tokens,
                        completion_tokens=chunk.usage.completion_tokens,
                    )
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                finish_reason = choice.finish_reason or finish_reason
                if choice.delta.content:
                    pieces.append(choice.delta.content)
                    yield choice.delta.content
        return Completion("".join(pieces), model, self.provider, finish_reason, usage)

    def _arguments(
        self,
        prompt: str,
        system: str | None,
        model: str | None,
        max_tokens: int | None,
        temperature: float | None,
    ) -> dict[str, Any]:
        messages: list[Any] = []
        if system:
            messages.append({"role": "system", "content": system})
        messages.append({"role": "user", "content": prompt})
        return {
            "model": model or self.default_model,
            "messages": messages,
            "max_tokens": max_tokens or self._default_max_tokens,
            "temperature": self._default_temperature if temperature is None else temperature,
        }
