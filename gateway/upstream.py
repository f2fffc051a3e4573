"""How the gateway talks to backends: aiohttp on the hot path, any httpx transport when injected.

Measured here (2 cores, trivial upstream, the gateway app driven in-process, 32 requests in
flight, CPU per proxied GET): 237 us through httpx-aiohttp's AiohttpTransport, 129 us with
aiohttp called directly (building httpx.Request/URL/Headers dominated the difference);
httpx's own pool is worse still (encode/httpx#3215: 6% of direct throughput in DESIGN.md).
So the forwarder speaks a tiny interface with two implementations: ``AiohttpUpstream``
(default, one pooled ClientSession) and ``HttpxUpstream`` (wraps an injected
``httpx.AsyncBaseTransport``: MockTransport, respx, ASGITransport in tests).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import httpx
from multidict import CIMultiDict
from yarl import URL

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

    def chunks(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class Upstream(Protocol):
    async def send(
        self, method: str, url: str, headers: RawHeaders, body: Body, timeouts: Timeouts
    ) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...


class _AiohttpResponse:
    __slots__ = ("_response", "headers", "status")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers = response.raw_headers

    def chunks(self) -> AsyncIterator[bytes]:
        # Whatever has arrived, as it arrives: no re-chunking, no waiting for a full buffer.
        return self._response.content.iter_any().__aiter__()

    async def aclose(self) -> None:
        # release() keeps a fully read connection in the pool and drops a half-read one.
        self._response.release()


class AiohttpUpstream:
    """One pooled aiohttp ClientSession, configured for proxying."""

    def __init__(self, pool_size: int, keepalive_s: float) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=pool_size, limit_per_host=0, keepalive_timeout=keepalive_s
            ),
            # A proxy must not carry one client's cookies to the next, nor add or decode
            # content encodings the client did not ask for.
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None),
        )
        self._timeouts: dict[Timeouts, aiohttp.ClientTimeout] = {}

    async def send(
        self, method: str, url: str, headers: RawHeaders, body: Body, timeouts: Timeouts
    ) -> UpstreamResponse:
        timeout = self._timeouts.get(timeouts)
        if timeout is None:
            timeout = self._timeouts[timeouts] = aiohttp.ClientTimeout(
                total=None, sock_connect=timeouts.connect, sock_read=timeouts.read
            )
        response = await self._session.request(
            method,
            URL(url, encoded=True),  # the client's path and query, as sent: not re-quoted
            headers=CIMultiDict([(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers]),
            data=body or None,
            allow_redirects=False,
            timeout=timeout,
        )
        return _AiohttpResponse(response)

    async def aclose(self) -> None:
        await self._session.close()


class _HttpxResponse:
    __slots__ = ("_response", "headers", "status")

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status = response.status_code
        self.headers = response.headers.raw

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
        self, method: str, url: str, headers: RawHeaders, body: Body, timeouts: Timeouts
    ) -> UpstreamResponse:
        timeout = {"connect": timeouts.connect, "read": timeouts.read}
        timeout |= {"write": timeouts.read, "pool": timeouts.read}
        request = httpx.Request(
            method, url, headers=headers, content=body, extensions={"timeout": timeout}
        )
        return _HttpxResponse(await self.transport.handle_async_request(request))

    async def aclose(self) -> None:
        await self.transport.aclose()
