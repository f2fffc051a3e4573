"""Token usage reported by every model-backed engine result."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens a call consumed; embeddings have no completion tokens."""

    prompt_tokens: int
    completion_tokens: int = 0
    # A real field (not a property) so dataclasses.asdict and from_attributes both see it.
    total_tokens: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "total_tokens", self.prompt_tokens + self.completion_tokens)
