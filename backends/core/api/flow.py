"""The framework-free half of serving one operation, shared by every backend.

A backend does only its I/O around these three steps:

1. read the body (bytes for a JSON operation, ``FormBody`` for a multipart one) and call
   ``prepare``: validated request + cache key, noted for the request log;
2. await or call the cache with ``prepared.cache_key`` (a hit is ``cached(content)``),
   else ``run`` the handler with ``prepared.api_request``, inline or in a worker thread
   as ``operation.inline`` says (an asyncio backend first asks ``awaitable``: model calls
   it can await on its loop) (readiness, ``operation.readiness``, is the backend's
   own check instead);
3. ``finish``: the bytes and media type to answer, the entry to cache, noted for the log
   with the meter reading the credits are computed from (``cached`` for a cache hit), or
   an ``EventStream`` to send as it is produced, which notes its response at the end.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any

from backends.core.api.api_request import ApiRequest, ApiResult, Handler, RawResult, StreamResult
from backends.core.api.cache_identity import CacheIdentities
from backends.core.api.event_stream import EventStream
from backends.core.api.handlers import all_handlers, awaitable_handlers
from backends.core.api.validation import parse_json_body, validate_form, validate_path
from backends.core.engine import Engine
from backends.core.errors import MLServiceError
from backends.core.metering.meter import read_meter
from backends.core.persistence.cache_keys import cache_key_for_hash, request_hash
from backends.core.persistence.log_notes import LogNotes
from backends.core.persistence.sanitize import loggable_invalid_body
from shared_schemas.generation import EVENT_STREAM_MEDIA_TYPE
from shared_schemas.operations import JSON, OPERATIONS, Operation

JSON_MEDIA_TYPE = "application/json"
CACHE_HIT = "hit"
CACHE_MISS = "miss"


class NotHandled(LookupError):
    """``run`` was called for an operation the backend answers itself: a wiring bug."""


@dataclass(frozen=True, slots=True)
class FormBody:
    """A multipart body: fields (uploaded files as bytes) and the uploaded files' names."""

    fields: dict[str, Any]
    filenames: dict[str, str]


RequestBody = bytes | FormBody | None


@dataclass(frozen=True, slots=True)
class Prepared:
    api_request: ApiRequest
    cache_key: str | None = None  # None: not cacheable (operation, model or settings)
    request_hash: str | None = None  # of the normalised body, when cacheable


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """A response to store in the shared cache (Redis now, the Postgres record later)."""

    key: str
    request_hash: str
    endpoint: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Answer:
    content: bytes
    media_type: str
    x_cache: str | None = None  # the X-Cache header: hit, miss, or absent when not cacheable
    cache_entry: CacheEntry | None = None
    # A text/event-stream body (content is empty): sent as it is produced, never cached.
    stream: EventStream | None = None


class RequestFlow:
    """Synchronous and thread-safe (handlers only call the thread-safe engine)."""

    def __init__(self, engine: Engine, *, cache_enabled: bool) -> None:
        self.engine = engine
        self._handlers: dict[str, Handler] = all_handlers()
        self._awaitable = awaitable_handlers()
        missing = [
            op.operation_id
            for op in OPERATIONS
            if not op.readiness and op.operation_id not in self._handlers
        ]
        if missing:
            raise RuntimeError(f"operations without a handler: {missing}")
        self._identities = CacheIdentities(engine.embedding_registry) if cache_enabled else None

    def prepare(
        self,
        operation: Operation,
        body: RequestBody,
        path_params: Mapping[str, str],
        notes: LogNotes,
    ) -> Prepared:
        """Validate what the backend read; a domain error (4xx) propagates to its handler."""
        notes.endpoint = operation.path
        model = operation.request_model
        validated: Any = None
        filenames: Mapping[str, str] = {}
        if model is not None:
            try:
                if operation.request_content_type == JSON:
                    validated = parse_json_body(model, body if isinstance(body, bytes) else b"")
                else:
                    form = body if isinstance(body, FormBody) else FormBody({}, {})
                    filenames = form.filenames
                    validated = validate_form(model, form.fields)
            except MLServiceError:
                notes.invalid_request = _invalid_body(body)
                raise
        params = validate_path(operation, path_params) if operation.path_params else {}
        api_request = ApiRequest(operation, validated, params, filenames)
        notes.request = api_request
        prepared = self._with_cache_key(api_request)
        notes.request_hash = prepared.request_hash
        return prepared

    def run(self, api_request: ApiRequest) -> ApiResult:
        """Call the operation's handler (blocking: the engine may run a model)."""
        handler = self._handlers.get(api_request.operation.operation_id)
        if handler is None:
            raise NotHandled(
                f"{api_request.operation.operation_id} has no handler: readiness checks the "
                "backend's own pools (build it with handlers.health.ready_response)"
            )
        return handler(self.engine, api_request)

    def awaitable(self, api_request: ApiRequest) -> Awaitable[ApiResult] | None:
        """The handler's result to await on an event loop, without a thread, when all its
        work is awaiting the inference runtime; None: ``run`` it in a thread instead."""
        handler = self._awaitable.get(api_request.operation.operation_id)
        return None if handler is None else handler(self.engine, api_request)

    def finish(self, prepared: Prepared, result: ApiResult, notes: LogNotes) -> Answer:
        """The answer to send, and what to cache."""
        notes.reading = read_meter(prepared.api_request, result)
        if isinstance(result, RawResult):
            notes.response = {"media_type": result.media_type, "bytes": len(result.content)}
            return Answer(result.content, result.media_type)
        if isinstance(result, StreamResult):  # the stream notes its response when it ends
            return Answer(b"", EVENT_STREAM_MEDIA_TYPE, stream=EventStream(result, notes))
        notes.response = result  # dumped only if a log row is built
        content = result.model_dump_json().encode()
        key, digest = prepared.cache_key, prepared.request_hash
        if key is None or digest is None:
            return Answer(content, JSON_MEDIA_TYPE)
        entry = CacheEntry(key, digest, prepared.api_request.operation.path, content)
        return Answer(content, JSON_MEDIA_TYPE, CACHE_MISS, entry)

    @staticmethod
    def cached(prepared: Prepared, content: bytes, notes: LogNotes) -> Answer:
        """A response served from the shared cache (the JSON exactly as first served)."""
        notes.reading = read_meter(prepared.api_request, None)
        return Answer(content, JSON_MEDIA_TYPE, CACHE_HIT)

    def _with_cache_key(self, api_request: ApiRequest) -> Prepared:
        if self._identities is None or not api_request.operation.cacheable:
            return Prepared(api_request)
        identity = self._identities.identity(api_request)
        if identity is None:
            return Prepared(api_request)
        digest = request_hash(api_request.body)
        key = cache_key_for_hash(api_request.operation.path, digest, identity)
        return Prepared(api_request, key, digest)


def _invalid_body(body: RequestBody) -> Any:
    if isinstance(body, FormBody):
        return loggable_invalid_body(body.fields)
    return loggable_invalid_body(body or b"")
