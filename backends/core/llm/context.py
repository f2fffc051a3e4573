"""A prompt against a model's context window: the room it leaves for the answer."""

from __future__ import annotations

from typing import Any

from backends.core.errors import InvalidInput
from backends.core.llm.base import ContextWindow
from shared_schemas.refusals import CONTEXT_LENGTH, MIN_ANSWER_TOKENS

__all__ = ["MIN_ANSWER_TOKENS", "answer_room", "capped_max_tokens", "context_length_details"]


def context_length_details(*loc: str) -> list[dict[str, Any]]:
    """The details of the declared refusal CONTEXT_LENGTH (the contract documents the 422:
    fewer than MIN_ANSWER_TOKENS left for the answer, rather than a few words)."""
    return [{"loc": ["body", *loc], "message": "too long", "type": CONTEXT_LENGTH.detail_type}]


def answer_room(window: ContextWindow, system: str | None, prompt: str, *loc: str) -> int:
    """Tokens the context leaves for the answer after this chat (a lower bound).

    InvalidInput (422, detail type ``context_length`` at ``loc``) when that is fewer than
    MIN_ANSWER_TOKENS: the texts the caller may not shorten are too long for the model.
    """
    used = window.chat_tokens(system, prompt)
    room = window.context_tokens - used
    if room < MIN_ANSWER_TOKENS:
        raise InvalidInput(
            f"the prompt takes about {used} tokens of the model's context of "
            f"{window.context_tokens}, which leaves no room for an answer of at least "
            f"{MIN_ANSWER_TOKENS} tokens; shorten it (or raise LOCAL_LLM_CONTEXT_TOKENS)",
            details=context_length_details(*loc),
        )
    return room


def capped_max_tokens(requested: int | None, room: int) -> int | None:
    """``requested`` lowered to ``room``; None (the provider's default) stays None when it
    is not asked for (llama.cpp lowers its default to what is left itself)."""
    return None if requested is None else min(requested, room)
