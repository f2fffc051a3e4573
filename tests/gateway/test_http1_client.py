"""gateway.http1 against scripted real TCP servers: framing, keep-alive, failures, uploads.

Each test starts an asyncio server on a free loopback port whose handler writes exactly the
bytes the case needs (chunked bodies, EOF-delimited bodies, interim 100 answers, early
errors, idle closes), so the client's HTTP/1.1 handling is checked byte for byte.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from gateway.errors import classify
from gateway.http1 import BackendClosed, ConnectFailed, Http1Response, Http1Upstream
from gateway.upstream import Timeouts

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
TIMEOUTS = Timeouts(connect=2, read=2)
OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


class Scripted:
    """A loopback server; counts the connections it accepted."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.url = ""
        self.tasks: list[asyncio.Task[None]] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self.tasks.append(task)  # type: ignore[arg-type]
        # the client going away, or the test ending, is how a handler's life ends
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await self.handler(reader, writer)
        writer.close()


@contextlib.asynccontextmanager
async def scripted(handler: Handler) -> AsyncIterator[Scripted]:
    server = Scripted(handler)
    listener = await asyncio.start_server(server._serve, "127.0.0.1", 0)
    server.url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    try:
        yield server
    finally:
        listener.close()
        for task in server.tasks:
            task.cancel()
        await asyncio.gather(*server.tasks, return_exceptions=True)


async def read_head(reader: asyncio.StreamReader) -> dict[str, str]:
    """The request line (under "") and headers of one request."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    headers = {"": head[0]}
    for line in head[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.lower()] = value.strip()
    return headers


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = b""
    while size := int((await reader.readline()).strip(), 16):
        body += await reader.readexactly(size)
        await reader.readexactly(2)
    await reader.readexactly(2)
    return body


async def body_of(response: Http1Response) -> bytes:
    whole = response.complete_body()
    if whole is None:
        whole = b"".join([chunk async for chunk in response.chunks()])
    await response.aclose()
    return whole


async def get(pool: Http1Upstream, url: str, method: str = "GET", body: bytes = b"") -> bytes:
    return await body_of(await pool.send(method, url + "/x?q=1", [], body, TIMEOUTS))


async def keep_alive_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        await read_head(reader)
        writer.write(OK)
        await writer.drain()


async def close_each(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_head(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok")
    await writer.drain()


@pytest.mark.parametrize(
    ("handler", "connections"),
    [(keep_alive_ok, 1), (close_each, 4)],
    ids=["keep-alive reuses one connection", "connection-close answers are not reused"],
)
async def test_connection_reuse(handler: Handler, connections: int) -> None:
    async with scripted(handler) as server:
        pool = Http1Upstream(pool_size=4, keepalive_s=4)
        assert [await get(pool, server.url) for _ in range(4)] == [b"ok"] * 4
        await pool.aclose()
    assert server.connections == connections


async def test_request_line_host_and_length_are_written() -> None:
    seen: list[dict[str, str]] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_head(reader)
        seen.append(head)
        await reader.readexactly(int(head["content-length"]))
        writer.write(OK)

    async with scripted(record) as server:
        pool = Http1Upstream(pool_size=4, keepalive_s=4)
        assert await get(pool, server.url, "POST", b'{"a": 1}') == b"ok"
        await pool.aclose()
    assert seen[0][""] == "POST /x?q=1 HTTP/1.1"
    assert seen[0]["host"] == server.url.removeprefix("http://")
    assert seen[0]["content-length"] == "8"


async def test_chunked_and_eof_delimited_bodies() -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for part in (b"hello ", b"chunked ", b"world"):
            writer.write(b"%x\r\n%b\r\n" % (len(part), part))
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(b"0\r\n\r\n")

    async def until_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end")

    pool = Http1Upstream(pool_size=4, keepalive_s=4)
    async with scripted(chunked) as server:
        response = await pool.send("GET", server.url + "/", [], b"", TIMEOUTS)
        assert response.complete_body() is None, "a chunked answer is streamed, not held"
        assert await body_of(response) == b"hello chunked world"
    async with scripted(until_eof) as server:
        assert await get(pool, server.url) == b"until the end"
        assert await get(pool, server.url) == b"until the end"
    assert server.connections == 2, "an EOF-delimited answer cannot leave a reusable connection"
    await pool.aclose()


async def test_head_and_interim_answers() -> None:
    async def head_then_100(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await read_head(reader)
            if request[""].startswith("HEAD"):
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + OK)
            await writer.drain()

    async with scripted(head_then_100) as server:
        pool = Http1Upstream(pool_size=4, keepalive_s=4)
        response = await pool.send("HEAD", server.url + "/", [], b"", TIMEOUTS)
        assert response.status == 200
        assert await body_of(response) == b""
        response = await pool.send("GET", server.url + "/", [], b"", TIMEOUTS)
        assert response.status == 200, "the interim 100 is not the answer"
        assert await body_of(response) == b"ok"
        await pool.aclose()


async def test_idle_connection_closed_by_the_backend() -> None:
    """GET is sent again on a fresh connection; POST is not repeated (it may have run)."""

    async def one_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(OK)
        await writer.drain()
        # keeps the connection open until the next request arrives, then drops it unanswered
        await reader.read(1)

    async with scripted(one_then_close) as server:
        pool = Http1Upstream(pool_size=4, keepalive_s=4)
        assert await get(pool, server.url) == b"ok"
        assert await get(pool, server.url) == b"ok"
        assert server.connections == 2  # the second GET: dropped, then sent on a fresh one
        with pytest.raises(BackendClosed) as caught:
            await get(pool, server.url, "POST", b"{}")
        failure = classify(caught.value, "b")
        assert failure is not None
        assert (failure.status, failure.kind) == (502, "protocol")
        # A POST the caller marks repeatable (an operation that writes nothing) goes again.
        connections = server.connections
        assert await get(pool, server.url, "POST", b"{}") == b"ok"  # a fresh connection
        response = await pool.send("POST", server.url + "/x", [], b"{}", TIMEOUTS, repeatable=True)
        assert await body_of(response) == b"ok"
        assert server.connections == connections + 2
        await pool.aclose()


async def test_connect_refused_read_timeout_and_garbage() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        await asyncio.sleep(5)

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"SMTP ready\r\n\r\n")

    pool = Http1Upstream(pool_size=4, keepalive_s=4)
    async with scripted(keep_alive_ok) as server:
        closed_url = server.url
    with pytest.raises(ConnectFailed) as refused:
        await get(pool, closed_url)
    async with scripted(silent) as server:
        with pytest.raises(TimeoutError) as timed_out:
            await pool.send("GET", server.url + "/", [], b"", Timeouts(connect=2, read=0.2))
    async with scripted(garbage) as server:
        with pytest.raises(BackendClosed) as malformed:
            await get(pool, server.url)
    kinds = [classify(e.value, "b") for e in (refused, timed_out, malformed)]
    assert [(k.status, k.kind) for k in kinds if k] == [
        (502, "connect"),
        (504, "timeout"),
        (502, "protocol"),
    ]
    await pool.aclose()


async def _upload(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
        await asyncio.sleep(0)


async def test_streamed_upload_is_chunk_framed_without_a_length() -> None:
    received: list[bytes] = []

    async def echo_size(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_head(reader)
        assert head["transfer-encoding"] == "chunked"
        received.append(await read_chunked(reader))
        writer.write(OK)

    parts = [bytes([i]) * (1000 + i) for i in range(50)]
    async with scripted(echo_size) as server:
        pool = Http1Upstream(pool_size=4, keepalive_s=4)
        response = await pool.send("POST", server.url + "/", [], _upload(parts), TIMEOUTS)
        assert await body_of(response) == b"ok"
        await pool.aclose()
    assert received == [b"".join(parts)]


async def test_early_answer_stops_the_upload_and_drops_the_connection() -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        body = b'{"error": "too large"}'
        head = b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: %d\r\n\r\n" % len(body)
        writer.write(head + body)
        await writer.drain()
        await asyncio.sleep(1)

    sent: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        for i in range(10_000):
            sent.append(i)
            yield b"x" * 65536
            await asyncio.sleep(0.001)

    async with scripted(refuse) as server:
        pool = Http1Upstream(pool_size=4, keepalive_s=4)
        headers = [(b"content-length", str(10_000 * 65536).encode())]
        response = await pool.send("POST", server.url + "/", headers, endless(), TIMEOUTS)
        assert response.status == 413
        assert await body_of(response) == b'{"error": "too large"}'
        assert len(sent) < 10_000
        assert await get(pool, server.url) != b"", "a fresh connection serves the next request"
        await pool.aclose()
    assert server.connections == 2


async def test_pool_limit_queues_requests() -> None:
    in_flight, peak = 0, 0

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal in_flight, peak
        while True:
            await read_head(reader)
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.02)
            in_flight -= 1
            writer.write(OK)
            await writer.drain()

    async with scripted(slow) as server:
        pool = Http1Upstream(pool_size=2, keepalive_s=4)
        answers = await asyncio.gather(*(get(pool, server.url) for _ in range(8)))
        await pool.aclose()
    assert answers == [b"ok"] * 8
    assert peak == 2
    assert server.connections == 2


async def test_requests_waiting_for_the_pool_are_sent_in_arrival_order() -> None:
    # At 1,000 client connections and 512 pooled ones, half the requests wait for a slot:
    # the slot a finished request frees goes to the oldest waiter, never to a newcomer, so
    # no client starves behind later ones.
    received: list[str] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            received.append((await read_head(reader))[""].split()[1])
            writer.write(OK)
            await writer.drain()

    async with scripted(record) as server:
        pool = Http1Upstream(pool_size=1, keepalive_s=4)
        first = await pool.send("GET", server.url + "/first", [], b"", TIMEOUTS)
        waiting = []
        for n in range(10):  # each queued behind the held slot before the next arrives
            waiting.append(asyncio.create_task(get(pool, f"{server.url}/{n}")))
            await asyncio.sleep(0)
        await body_of(first)  # frees the one slot
        late = asyncio.create_task(get(pool, server.url + "/late"))
        assert await asyncio.gather(*waiting, late) == [b"ok"] * 11
        await pool.aclose()
    assert received == ["/first", *(f"/{n}/x?q=1" for n in range(10)), "/late/x?q=1"]


async def test_a_waiter_cancelled_for_or_with_a_slot_loses_none() -> None:
    # A waiter cancelled while it waits is skipped; one cancelled just after it was handed
    # the freed slot (before it ran) passes the slot on: the pool never shrinks.
    async with scripted(keep_alive_ok) as server:
        pool = Http1Upstream(pool_size=1, keepalive_s=4)
        first = await pool.send("GET", server.url + "/first", [], b"", TIMEOUTS)
        gone = asyncio.create_task(get(pool, server.url))
        handed = asyncio.create_task(get(pool, server.url))
        last = asyncio.create_task(get(pool, server.url))
        await asyncio.sleep(0)  # all three wait for the one slot
        gone.cancel()
        await asyncio.sleep(0)
        await body_of(first)  # frees the slot: handed to ``handed``, which has not run yet
        handed.cancel()
        assert await asyncio.wait_for(last, 2) == b"ok"
        assert await asyncio.wait_for(get(pool, server.url), 2) == b"ok"
        for task in (gone, handed):
            with pytest.raises(asyncio.CancelledError):
                await task
        await pool.aclose()


async def test_unread_large_answer_leaves_a_working_connection() -> None:
    """A client gone mid-download must not leave the pooled socket paused for the next one."""
    # Over the read-pausing mark (256 KiB), yet whole after two socket reads: the answer is
    # complete (so the connection is pooled) while reading is paused.
    big = b"z" * (300 * 1024)

    async def by_path(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await read_head(reader)
            if request[""].startswith("GET /big"):
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(big) + big)
            else:
                writer.write(OK)
            await writer.drain()

    async def complete_and_paused(pool: Http1Upstream, url: str) -> Http1Response | None:
        """The big answer, once all of it arrived unread with reading paused; None when
        the socket reads split it so that reading paused before its end (the kernel's
        choice: loopback sometimes delivers the first 256 KiB in smaller pieces)."""
        response = await pool.send("GET", url + "/big", [], b"", TIMEOUTS)
        for _ in range(100):  # let all of it arrive, unread
            await asyncio.sleep(0.01)
            if response._connection.complete:
                break
        if response._connection.complete:
            assert response._connection.paused
            return response
        await response.aclose()
        return None

    async with scripted(by_path) as server:
        attempts = 0
        while attempts < 5:
            attempts += 1
            pool = Http1Upstream(pool_size=4, keepalive_s=4)
            response = await complete_and_paused(pool, server.url)
            if response is not None:
                break
            await pool.aclose()
        assert response is not None, "the answer never arrived whole before reading paused"
        await response.aclose()
        answer = await pool.send("GET", server.url + "/", [], b"", Timeouts(connect=2, read=0.5))
        assert await body_of(answer) == b"ok"
        await pool.aclose()
    assert server.connections == attempts  # the pooled connection was reused, not replaced


async def test_early_answer_while_the_backend_stops_reading() -> None:
    """The upload is stuck on a full socket buffer; the answer must still get through."""

    async def answer_and_stop_reading(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(5)  # never reads the body

    async def flood() -> AsyncIterator[bytes]:
        for _ in range(2000):  # 128 MiB, far past any socket buffer; no pause between parts
            yield b"x" * 65536

    async with scripted(answer_and_stop_reading) as server:
        pool = Http1Upstream(pool_size=4, keepalive_s=4)
        headers = [(b"content-length", str(2000 * 65536).encode())]
        quick = Timeouts(connect=2, read=2)
        response = await pool.send("POST", server.url + "/", headers, flood(), quick)
        assert response.status == 413
        await response.aclose()
        await pool.aclose()


SECOND = b"HTTP/1.1 200 OK\r\ncontent-length: 45\r\nx-injected: yes\r\n\r\n" + b"x" * 45


@pytest.mark.parametrize(
    ("answer", "status", "body"),
    [
        (OK + SECOND, 200, b"ok"),
        (b"HTTP/1.1 204 No Content\r\n\r\n" + SECOND, 204, b""),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n" + SECOND,
            200,
            b"ok",
        ),
        (OK + b"garbage that is no response at all", 200, b"ok"),
    ],
    ids=["after a content-length body", "after a 204", "after a chunked body", "garbage"],
)
async def test_bytes_after_the_answer_are_not_relayed_and_drop_the_connection(
    answer: bytes, status: int, body: bytes
) -> None:
    async def with_surplus(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_head(reader)
            writer.write(answer)  # one write: the surplus arrives with the answer
            await writer.drain()

    async with scripted(with_surplus) as server:
        pool = Http1Upstream(pool_size=4, keepalive_s=4)
        for _ in range(2):
            response = await pool.send("GET", server.url + "/", [], b"", TIMEOUTS)
            names = [name.lower() for name, _ in response.headers]
            assert (response.status, await body_of(response)) == (status, body)
            assert b"x-injected" not in names
            assert names.count(b"content-length") <= 1
        await pool.aclose()
    assert server.connections == 2, "a connection with surplus bytes was reused"
