"""OpenAI-compatible routes (/v1/...) served by calling the selected backend's contract.

Off the byte-proxy hot path: these requests are parsed, translated (gateway.openai_formats),
sent as contract operations to the selected backend and translated back, so they work for
any backend that passes the conformance suite. Auth and rate limits are the gateway's own
(the ``admit`` it is given); every error is OpenAI's error object.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from gateway import openai_formats as fmt
from gateway.errors import GatewayError, classify
from gateway.headers import Incoming
from gateway.metrics import GatewayMetrics
from gateway.openai_formats import OpenAIError
from gateway.proxy import until_disconnected
from gateway.registry import BackendRegistry
from gateway.settings import GatewaySettings
from gateway.upstream import Timeouts, Upstream, UpstreamResponse
from shared_schemas.operations import by_id

log = logging.getLogger("gateway.openai")
PREFIX = "/v1/"
METRICS_GROUP = "openai"
# Request headers the gateway sets itself on a translated call (the client's describe the
# OpenAI request, not the contract's).
_REPLACED = frozenset({b"content-type", b"content-length", b"accept", b"accept-encoding"})
Admit = Callable[[Incoming], Awaitable[None]]


class BackendCall:
    """One contract operation's answer: status, content type and the whole body."""

    __slots__ = ("body", "content_type", "status")

    def __init__(self, status: int, content_type: str, body: bytes) -> None:
        self.status = status
        self.content_type = content_type
        self.body = body

    def json(self) -> Any:
        """The body as JSON; an OpenAI error when the backend answered an error."""
        try:
            payload = json.loads(self.body)
        except ValueError:
            raise OpenAIError(502, "the backend answered something that is not JSON") from None
        if self.status >= 400:
            raise fmt.from_contract_error(self.status, payload)
        return payload


class OpenAICompat:
    """The /v1 routes; ``upstream`` is set by the gateway's lifespan."""

    def __init__(
        self,
        registry: BackendRegistry,
        settings: GatewaySettings,
        metrics: GatewayMetrics,
        admit: Admit | None,
    ) -> None:
        self.registry = registry
        self.settings = settings
        self.metrics = metrics
        self.upstream: Upstream | None = None
        self._admit = admit
        self._operations = by_id()
        self._routes: dict[
            tuple[str, str], Callable[[Request, Incoming], Awaitable[Reply | StreamedReply]]
        ] = {
            ("GET", "/v1/models"): self._models,
            ("POST", "/v1/embeddings"): self._embeddings,
            ("POST", "/v1/chat/completions"): self._chat,
            ("POST", "/v1/audio/transcriptions"): self._transcriptions,
        }

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, incoming: Incoming
    ) -> None:
        started = time.perf_counter()
        status = 500
        try:
            reply = await self._reply(scope, receive, incoming)
            status = reply.status
            if isinstance(reply, StreamedReply):  # stopped when the client goes
                await until_disconnected(receive, reply.send(send, self._headers(incoming)))
            else:
                await reply.send(send, self._headers(incoming))
        except OpenAIError as exc:
            status = exc.status
            reply = Reply.json(exc.status, exc.body(), exc.headers)
            await reply.send(send, self._headers(incoming))
        finally:
            self.metrics.observe(
                self.registry.selected.name,
                METRICS_GROUP,
                scope["method"],
                status,
                time.perf_counter() - started,
            )

    async def _reply(
        self, scope: Scope, receive: Receive, incoming: Incoming
    ) -> Reply | StreamedReply:
        path: str = scope["path"].rstrip("/")
        method: str = scope["method"]
        route = self._routes.get((method, path))
        if route is None and path.startswith("/v1/models/"):
            route = self._model if method == "GET" else None
        if route is None:
            known = {p for _, p in self._routes}
            if path in known or path.startswith("/v1/models/"):
                raise OpenAIError(405, f"method {method} is not allowed on {path}")
            raise OpenAIError(404, f"Invalid URL ({method} {path})", code="unknown_url")
        try:
            if self._admit is not None:
                await self._admit(incoming)
        except GatewayError as exc:
            code = "invalid_api_key" if exc.status == 401 else None
            if exc.status == 429:
                code = "rate_limit_exceeded"
            raise OpenAIError(exc.status, exc.message, code=code, headers=exc.headers) from None
        if incoming.content_length is not None and incoming.content_length > self._limit:
            raise OpenAIError(413, "request body too large")
        if self.upstream is None:
            raise OpenAIError(503, "gateway is not started (lifespan not run)")
        try:
            return await route(Request(scope, _limited(receive, self._limit)), incoming)
        except (KeyError, TypeError, IndexError, AttributeError) as exc:
            # a 200 without the contract's fields: the backend is not conformant
            log.warning("%s %s: backend answer outside the contract: %r", method, path, exc)
            raise OpenAIError(502, "the backend's answer does not follow the contract") from None

    @property
    def _limit(self) -> int:
        return self.settings.max_body_bytes

    def _headers(self, incoming: Incoming) -> tuple[tuple[bytes, bytes], ...]:
        return (
            (b"x-request-id", incoming.request_id.encode()),
            (b"x-ml-backend", self.registry.selected.header_value),
        )

    # --- calling the backend ------------------------------------------------------------

    async def _call(
        self,
        operation_id: str,
        incoming: Incoming,
        *,
        payload: Any = None,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> BackendCall:
        """Send one contract operation to the selected backend and read its whole answer."""
        response = await self._send(
            operation_id, incoming, payload=payload, body=body, content_type=content_type
        )
        try:
            whole = response.complete_body()
            if whole is None:
                whole = b"".join([chunk async for chunk in response.chunks()])
        except Exception as exc:
            raise self._failure(exc, operation_id) from None
        finally:
            await response.aclose()
        return BackendCall(response.status, _content_type(response), whole)

    async def _send(
        self,
        operation_id: str,
        incoming: Incoming,
        *,
        payload: Any = None,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> UpstreamResponse:
        """Send one contract operation to the selected backend; its body is left to read."""
        assert self.upstream is not None  # checked in _reply
        operation = self._operations[operation_id]
        if payload is not None:
            body, content_type = json.dumps(payload).encode(), "application/json"
        headers = [(n, v) for n, v in incoming.headers if n not in _REPLACED]
        headers.append((b"accept", b"*/*"))
        if content_type is not None:
            headers.append((b"content-type", content_type.encode("latin-1")))
        if operation.method != "GET":
            headers.append((b"content-length", str(len(body)).encode()))
        backend = self.registry.selected
        group = operation.group
        timeouts = Timeouts(self.settings.connect_timeout_s, self.settings.timeout_for(group))
        try:
            return await self.upstream.send(
                operation.method,
                backend.base_url + operation.path,
                headers,
                body,
                timeouts,
                repeatable=not operation.writes,
            )
        except Exception as exc:
            raise self._failure(exc, operation_id) from None

    def _failure(self, exc: Exception, operation_id: str) -> OpenAIError:
        """A failed exchange with the backend as OpenAI's error (502/504)."""
        backend = self.registry.selected
        failure = classify(exc, backend.name)
        if failure is None:
            log.error("%s to backend %r failed", operation_id, backend.name, exc_info=exc)
            return OpenAIError(502, f"backend {backend.name!r} failed")
        self.metrics.upstream_error(backend.name, METRICS_GROUP, failure.kind)
        return OpenAIError(failure.status, failure.message)

    async def _json_body(self, request: Request) -> Any:
        try:
            return json.loads(await request.body())
        except ValueError:
            raise OpenAIError(400, "the request body is not valid JSON") from None

    # --- routes -------------------------------------------------------------------------

    async def _model_entries(self, incoming: Incoming) -> list[dict[str, Any]]:
        """Chat, embedding and transcription models the selected backend can serve now."""
        ready, embeddings, transcription = await asyncio.gather(
            self._call("health_ready", incoming),
            self._call("embeddings_models", incoming),
            self._call("transcription_health", incoming),
        )
        entries: list[dict[str, Any]] = []
        if ready.status == 200:
            llm = json.loads(ready.body).get("checks", {}).get("llm") or {}
            provider, _, model = str(llm.get("detail") or "").partition(": ")
            if llm.get("ok") and model:  # the engine's "<provider>: <model>"
                entries.append(fmt.model_entry(model, provider))
        for model_info in embeddings.json()["models"]:
            if model_info["available"]:
                entries.append(fmt.model_entry(model_info["id"], model_info["provider"]))
        component = transcription.json()
        if component["available"]:
            entries.append(fmt.model_entry(component["model"], component["provider"]))
        return entries

    async def _models(self, request: Request, incoming: Incoming) -> Reply:
        return Reply.json(200, fmt.model_list(await self._model_entries(incoming)))

    async def _model(self, request: Request, incoming: Incoming) -> Reply:
        wanted = request.url.path.removeprefix("/v1/models/").rstrip("/")
        for entry in await self._model_entries(incoming):
            if entry["id"] == wanted:
                return Reply.json(200, entry)
        raise OpenAIError(
            404, f"The model {wanted!r} does not exist", param="model", code="model_not_found"
        )

    async def _embeddings(self, request: Request, incoming: Incoming) -> Reply:
        body = fmt.parse(fmt.EmbeddingsBody, await self._json_body(request))
        answers = [
            (await self._call("embeddings_batch", incoming, payload=batch)).json()
            for batch in fmt.embedding_batches(body)
        ]
        return Reply.json(200, fmt.embeddings_response(body, answers))

    async def _chat(self, request: Request, incoming: Incoming) -> Reply | StreamedReply:
        body = fmt.parse(fmt.ChatBody, await self._json_body(request))
        generate = fmt.generate_request(body)
        if not body.stream:
            generated = (await self._call("analysis_generate", incoming, payload=generate)).json()
            return Reply.json(200, fmt.chat_response(generated))
        include_usage = bool((body.stream_options or {}).get("include_usage"))
        response = await self._send(
            "analysis_generate", incoming, payload={**generate, "stream": True}
        )
        if response.status == 200 and _content_type(response).startswith("text/event-stream"):
            chunks = fmt.ChatChunks(body.model, include_usage)
            return StreamedReply(response, chunks, lambda exc: self._failure(exc, "chat"))
        # an error, or a backend that answers whole: the answer in one chunk
        try:
            whole = response.complete_body()
            if whole is None:
                whole = b"".join([chunk async for chunk in response.chunks()])
        except Exception as exc:
            raise self._failure(exc, "analysis_generate") from None
        finally:
            await response.aclose()
        generated = BackendCall(response.status, _content_type(response), whole).json()
        events = fmt.chat_stream(generated, include_usage)
        return Reply(200, "text/event-stream", events, fmt.EVENT_STREAM_HEADERS)

    async def _transcriptions(self, request: Request, incoming: Incoming) -> Reply:
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise OpenAIError(400, "send the audio as multipart/form-data", param="file")
        try:
            form = await request.form(max_files=1, max_fields=16)
        except OpenAIError:
            raise  # 413 from the body limit
        except Exception as exc:  # python-multipart's framing errors, over-limit parts
            raise OpenAIError(400, f"unreadable multipart body: {exc}") from None
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise OpenAIError(400, "file is required", param="file")
            response_format = str(form.get("response_format") or "json")
            if response_format not in fmt.TRANSCRIPTION_FORMATS:
                raise OpenAIError(
                    400,
                    f"response_format must be one of {', '.join(fmt.TRANSCRIPTION_FORMATS)}",
                    param="response_format",
                )
            granularities = form.getlist("timestamp_granularities[]")
            if any(g != "segment" for g in granularities):
                raise OpenAIError(
                    400, "only segment timestamps are supported", param="timestamp_granularities"
                )
            fields = {"response_format": response_format}
            for name in ("model", "language", "temperature"):
                value = form.get(name)
                if isinstance(value, str) and value:
                    fields[name] = value
            audio = await upload.read()
            body, content_type = _multipart(fields, upload, audio)
        finally:
            await form.close()
        answer = await self._call(
            "transcription_transcribe", incoming, body=body, content_type=content_type
        )
        if response_format in ("json", "verbose_json"):
            transcript = answer.json()
            if response_format == "json":
                return Reply.json(200, fmt.transcription_json(transcript))
            temperature = float(fields.get("temperature", 0.0))
            return Reply.json(200, fmt.transcription_verbose(transcript, temperature))
        if answer.status >= 400:
            answer.json()  # raises the error
        return Reply(200, answer.content_type or "text/plain; charset=utf-8", answer.body)


def _content_type(response: UpstreamResponse) -> str:
    value = next((v for n, v in response.headers if n.lower() == b"content-type"), b"")
    return value.decode("latin-1")


def _limited(receive: Receive, limit: int) -> Receive:
    """``receive`` that answers 413 once the body passes ``limit`` bytes (chunked included)."""
    seen = 0

    async def limited() -> Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise OpenAIError(413, "request body too large")
        return message

    return limited


def _multipart(fields: dict[str, str], upload: UploadFile, audio: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body for the backend: the text fields, then the file."""
    boundary = os.urandom(16).hex()
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    filename = (upload.filename or "audio").replace('"', "").replace("\r", "").replace("\n", "")
    file_type = upload.content_type or "application/octet-stream"
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {file_type}\r\n\r\n".encode()
        + audio
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class Reply:
    """A whole response: status, content type, body and extra headers."""

    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        status: int,
        content_type: str,
        body: bytes,
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        self.status = status
        self.content_type = content_type
        self.body = body
        self.headers = headers

    @classmethod
    def json(
        cls, status: int, payload: Any, headers: tuple[tuple[bytes, bytes], ...] = ()
    ) -> Reply:
        return cls(status, "application/json", json.dumps(payload).encode(), headers)

    async def send(self, send: Send, own: tuple[tuple[bytes, bytes], ...]) -> None:
        headers = [
            (b"content-type", self.content_type.encode("latin-1")),
            (b"content-length", str(len(self.body)).encode()),
            *self.headers,
            *own,
        ]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


class StreamedReply:
    """A chat completion streamed as the backend's generation events arrive."""

    status = 200

    def __init__(
        self,
        response: UpstreamResponse,
        chunks: fmt.ChatChunks,
        failure: Callable[[Exception], OpenAIError],
    ) -> None:
        self._response = response
        self._chunks = chunks
        self._failure = failure

    async def send(self, send: Send, own: tuple[tuple[bytes, bytes], ...]) -> None:
        headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            *fmt.EVENT_STREAM_HEADERS,
            *own,
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        try:
            await self._relay(send)
        finally:
            await self._response.aclose()
        await send({"type": "http.response.body", "body": b""})

    async def _relay(self, send: Send) -> None:
        chunks = self._chunks
        await send({"type": "http.response.body", "body": chunks.start(), "more_body": True})
        try:
            async for name, data in fmt.server_events(self._response.chunks()):
                out = chunks.event(name, data)
                if out:
                    await send({"type": "http.response.body", "body": out, "more_body": True})
                if chunks.finished:
                    return
        except Exception as exc:  # the backend failed mid-stream
            error = self._failure(exc)
        else:
            error = OpenAIError(502, "the backend's event stream ended without its done event")
        await send({"type": "http.response.body", "body": chunks.error(error), "more_body": True})
