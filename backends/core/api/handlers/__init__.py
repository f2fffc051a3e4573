"""Handlers of the contract operations, one module per API group.

Each module exports ``HANDLERS``: operation_id -> ``Handler``. ``health_ready`` has no
handler on purpose: readiness checks the backend's own pools, so each backend builds it
with ``health.ready_response``. A module may also export ``AWAITABLE_HANDLERS`` for the
operations whose work is awaiting the inference runtime (an asyncio backend awaits them
on its event loop, with no thread).
"""

from __future__ import annotations

from backends.core.api.api_request import AwaitableHandler, Handler
from backends.core.api.handlers import (
    analysis,
    complexity,
    embeddings,
    health,
    rag,
    transcription,
)

_GROUPS = (health, embeddings, rag, analysis, complexity, transcription)


def all_handlers() -> dict[str, Handler]:
    """Every group's handlers in one mapping (an operation id claimed twice is a bug)."""
    merged: dict[str, Handler] = {}
    for group in _GROUPS:
        clash = merged.keys() & group.HANDLERS.keys()
        if clash:
            raise RuntimeError(f"operations handled twice: {sorted(clash)}")
        merged.update(group.HANDLERS)
    return merged


def awaitable_handlers() -> dict[str, AwaitableHandler]:
    """Every group's ``AWAITABLE_HANDLERS`` (each also has a ``Handler``)."""
    merged: dict[str, AwaitableHandler] = {}
    for group in _GROUPS:
        merged.update(getattr(group, "AWAITABLE_HANDLERS", {}))
    return merged
