"""The validated request a handler receives, what it returns, and the handler type.

Handlers are synchronous (async backends run them in a worker thread, or await an
``AwaitableHandler`` where the operation has one), take the
validated shared request model and return the shared response model (or ``RawResult``
for non-JSON bodies such as subtitles and converted audio, ``StreamResult`` for server-sent
events). They raise only the domain
errors of ``backends.core.errors``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from backends.core.engine import Engine
from shared_schemas.operations import Operation

BINARY_FIELDS = frozenset({"file", "audio"})
BodyT = TypeVar("BodyT", bound=BaseModel)


@dataclass(frozen=True)
class RawResult:
    """A non-JSON response body (text/vtt, audio/mpeg, ...)."""

    content: bytes
    media_type: str
    audio_seconds: float | None = None  # a transcript's audio length, for metering


@dataclass(frozen=True)
class StreamResult:
    """A text/event-stream body: (event name, payload) pairs produced while the client reads.

    The handler has already waited for the first one, so an error before it was raised as
    an ordinary error; closing ``events`` stops the work behind them.
    """

    events: Generator[tuple[str, BaseModel], None, None]


ApiResult = BaseModel | RawResult | StreamResult


@dataclass(frozen=True)
class ApiRequest:
    """One validated request: the operation, its body model and its path parameters."""

    operation: Operation
    body: Any = None  # the operation's request model instance, or None
    path_params: Mapping[str, str] = field(default_factory=dict)
    filenames: Mapping[str, str] = field(default_factory=dict)  # multipart field -> file name

    def body_as(self, model: type[BodyT]) -> BodyT:
        """The body, checked to be an instance of the operation's request model."""
        if not isinstance(self.body, model):
            raise TypeError(
                f"{self.operation.operation_id} expects a {model.__name__} body, "
                f"got {type(self.body).__name__}"
            )
        return self.body

    def loggable_body(self) -> dict[str, Any] | None:
        """The body as JSON for the request log (uploaded bytes replaced by their size)."""
        if self.body is None:
            return None
        binary = _binary_fields(type(self.body))
        if not binary:  # most models: a plain dump (an exclude set costs ~5 us more)
            plain: dict[str, Any] = self.body.model_dump(mode="json")
            return plain
        dumped: dict[str, Any] = self.body.model_dump(mode="json", exclude=binary)
        for name in binary:
            value = getattr(self.body, name)
            if value is not None:
                dumped[name] = f"[{len(value)} bytes omitted]"
        return dumped


_BINARY_BY_MODEL: dict[type[BaseModel], frozenset[str]] = {}


def _binary_fields(model: type[BaseModel]) -> frozenset[str]:
    """The uploaded-bytes fields a request model has (the log keeps only their size)."""
    found = _BINARY_BY_MODEL.get(model)
    if found is None:
        found = _BINARY_BY_MODEL[model] = BINARY_FIELDS & frozenset(model.model_fields)
    return found


Handler = Callable[[Engine, ApiRequest], ApiResult]
# An operation whose work is only awaiting the inference runtime also has one of these: the
# result to await on the event loop, or None when this request would block (e.g. a hosted
# provider's synchronous client), which then runs the ``Handler`` in a thread.
AwaitableHandler = Callable[[Engine, ApiRequest], Awaitable[ApiResult] | None]
