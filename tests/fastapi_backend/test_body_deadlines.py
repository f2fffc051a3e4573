"""The body timeout of the FastAPI backend: one timer for every request reading its body.

Driven through ``receive_capped`` with ASGI ``receive`` callables that deliver a body in
pieces or stay silent, as a client does; each test is bounded so a missed deadline fails
instead of hanging.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from starlette.types import Message

from backends.core.errors import RequestTimeout
from backends.fastapi_service.body import BodyDeadlines, receive_capped

TIMEOUT_S = 0.2
BOUND_S = 10  # a deadline that never fires fails the test rather than hang it


def _client(
    pieces: list[bytes], pause_s: float, silent_after: bool = False
) -> Callable[[], Awaitable[Message]]:
    """``receive`` of a client sending ``pieces`` ``pause_s`` apart (then nothing at all
    when ``silent_after``: it never ends its body)."""
    queue = list(pieces)

    async def receive() -> Message:
        if not queue:
            await asyncio.sleep(3600)  # a silent client
        await asyncio.sleep(pause_s)
        piece = queue.pop(0)
        return {"type": "http.request", "body": piece, "more_body": bool(queue) or silent_after}

    return receive


def _run(*readers: Awaitable[object]) -> list[object]:
    async def main() -> list[object]:
        gathered = asyncio.gather(*readers, return_exceptions=True)
        return list(await asyncio.wait_for(gathered, BOUND_S))

    return asyncio.run(main())


def test_silent_clients_starting_at_different_times_all_time_out() -> None:
    """The second one starts after the timer was armed for the first: it still gets its 408."""
    deadlines = BodyDeadlines(TIMEOUT_S)

    async def later() -> bytes:
        await asyncio.sleep(TIMEOUT_S / 2)
        return await receive_capped(_client([b"{"], 0, silent_after=True), 100, deadlines)

    async def much_later() -> bytes:
        await asyncio.sleep(TIMEOUT_S * 3)  # after the timer went idle
        return await receive_capped(_client([], 0), 100, deadlines)

    first = receive_capped(_client([], 0), 100, deadlines)
    results = _run(first, later(), much_later())
    assert [type(r) for r in results] == [RequestTimeout] * 3
    assert "0.2 s" in str(results[0])


def test_each_piece_moves_the_deadline() -> None:
    """Five pieces, each within the timeout of the one before, the whole body longer."""
    deadlines = BodyDeadlines(TIMEOUT_S)
    pieces = [b'{"text": ', b'"a', b"b", b"c", b'"}']
    (body,) = _run(receive_capped(_client(pieces, TIMEOUT_S / 2), 100, deadlines))
    assert body == b'{"text": "abc"}'


def test_a_body_read_in_time_is_never_cancelled_later() -> None:
    """The request goes on (here: waits past the deadline) without a stray cancellation,
    next to another request whose client is silent and does time out."""
    deadlines = BodyDeadlines(TIMEOUT_S)

    async def request() -> bytes:
        body = await receive_capped(_client([b"{}"], 0), 100, deadlines)
        await asyncio.sleep(TIMEOUT_S * 2)  # still running when the timer fires
        return body

    results = _run(request(), receive_capped(_client([], 0), 100, deadlines))
    assert results[0] == b"{}"
    assert isinstance(results[1], RequestTimeout)


def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    deadlines = BodyDeadlines(TIMEOUT_S)

    async def main() -> None:
        task = asyncio.ensure_future(receive_capped(_client([], 0), 100, deadlines))
        await asyncio.sleep(TIMEOUT_S / 4)
        task.cancel()  # the client disconnected, the server is shutting down...
        with pytest.raises(asyncio.CancelledError):
            await task
        # nothing of it is left: a new silent body gets its own 408
        with pytest.raises(RequestTimeout):
            await receive_capped(_client([], 0), 100, deadlines)

    asyncio.run(asyncio.wait_for(main(), BOUND_S))


def test_a_read_on_another_loop_finds_its_own_task() -> None:
    """The loop of the last read is remembered (no getpid system call per read); a read
    on another loop (each ``asyncio.run``) still finds its own task and loop."""
    deadlines = BodyDeadlines(TIMEOUT_S)
    for body in (b"{}", b"[]", b'"x"'):
        assert _run(receive_capped(_client([body], 0), 100, deadlines)) == [body]
