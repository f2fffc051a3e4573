"""The API facade both backends call: operation -> handler -> engine, plus cache identity."""

from __future__ import annotations

from backends.core.api.cache_identity import CacheIdentities
from backends.core.api.dispatch import ApiRequest, ApiResult, Handler
from backends.core.api.handlers import all_handlers
from backends.core.engine import Engine


class UnknownOperation(LookupError):
    """No handler for an operation id: a wiring bug in the calling backend."""


# Handlers that only format constants or do microseconds of arithmetic: an async backend
# may run them on its event loop instead of paying a worker-thread hop per request.
INLINE_OPERATIONS = frozenset(
    {
        "health_status",
        "health_live",
        "complexity_scale",
        "complexity_calculate_adjustment",
        "transcription_formats",
        "transcription_languages",
        "transcription_estimate_cost",
    }
)

_NOT_HANDLED = {
    "health_ready": "readiness checks the backend's own pools: build it with "
    "backends.core.api.handlers.health.ready_response",
}


class Api:
    """Synchronous and thread-safe (handlers only call the thread-safe engine)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._handlers: dict[str, Handler] = all_handlers()
        self._identities = CacheIdentities(engine.embedding_registry)

    def handle(self, api_request: ApiRequest) -> ApiResult:
        """Run the operation; domain errors (backends.core.errors) propagate to the backend."""
        operation_id = api_request.operation.operation_id
        handler = self._handlers.get(operation_id)
        if handler is None:
            reason = _NOT_HANDLED.get(operation_id, "not an operation of the contract")
            raise UnknownOperation(f"no handler for operation {operation_id!r}: {reason}")
        return handler(self.engine, api_request)

    def cache_identity(self, api_request: ApiRequest) -> str | None:
        """ "<provider>/<model>" when a success is deterministic given the body, else None."""
        return self._identities.identity(api_request)
