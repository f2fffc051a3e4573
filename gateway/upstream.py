"""How the forwarder talks to backends: a tiny interface with two implementations.

``gateway.http1.Http1Upstream`` is the default (the hot path: pooled HTTP/1.1 on asyncio
and httptools); ``HttpxUpstream`` wraps an injected ``httpx.AsyncBaseTransport``
(MockTransport, respx, ASGITransport in tests). httpx's own pool is not used for proxying:
it reached 6% of direct throughput here (encode/httpx#3215).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Protocol

import httpx

RawHeaders = list[tuple[bytes, bytes]]
Body = bytes | AsyncIterable[bytes]


@dataclass(frozen=True)
class Timeouts:
    """Seconds to connect, and seconds the backend may stay silent while we wait for bytes."""

    connect: float
    read: float


class UpstreamResponse(Protocol):
    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Iterable[tuple[bytes, bytes]]: ...

    def complete_body(self) -> bytes | None:
        """The whole body if it has already arrived, else None (then read ``chunks()``)."""
        ...

    def chunks(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class Upstream(Protocol):
    async def send(
        self,
        method: str,
        url: str,
        headers: RawHeaders,
        body: Body,
        timeouts: Timeouts,
        *,
        repeatable: bool = False,
    ) -> UpstreamResponse:
        """One exchange. A pooled connection that the backend closed before answering is
        tried again on a new one for idempotent methods, and for a request the caller marks
        ``repeatable`` (``shared_schemas.operations.may_repeat``: it writes nothing)."""
        ...

    async def aclose(self) -> None: ...


class _HttpxResponse:
    __slots__ = ("_response", "headers", "status")

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status = response.status_code
        self.headers = response.headers.raw

    def complete_body(self) -> None:
        return None  # httpx transports stream; nothing is known to be complete up front

    def chunks(self) -> AsyncIterator[bytes]:
        # The transport's raw stream: aiter_raw() refuses responses built already read.
        stream = self._response.stream
        assert isinstance(stream, httpx.AsyncByteStream), "an async transport is required"
        return stream.__aiter__()

    async def aclose(self) -> None:
        await self._response.aclose()


class HttpxUpstream:
    """Any httpx transport (the injection point for tests); not used on the default path."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self.transport = transport

    async def send(
        self,
        method: str,
        url: str,
        headers: RawHeaders,
        body: Body,
        timeouts: Timeouts,
        *,
        repeatable: bool = False,  # the transport's own business
    ) -> UpstreamResponse:
        timeout = {"connect": timeouts.connect, "read": timeouts.read}
        timeout |= {"write": timeouts.read, "pool": timeouts.read}
        request = httpx.Request(
            method, url, headers=headers, content=body, extensions={"timeout": timeout}
        )
        return _HttpxResponse(await self.transport.handle_async_request(request))

    async def aclose(self) -> None:
        await self.transport.aclose()
