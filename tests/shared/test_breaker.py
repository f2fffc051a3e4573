"""The circuit breaker: closed, open for its interval, then one trial call (half-open).

Its users call it from threads (the backends' request threads, the vector store) and from
an event loop (the gateway, the FastAPI cache): both are tested with callers arriving
together when the interval ends, as the requests in flight do.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from shared_schemas.breaker import CircuitBreaker


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _opened(retry_s: float = 5.0) -> tuple[CircuitBreaker, FakeClock]:
    clock = FakeClock()
    breaker = CircuitBreaker(retry_s, clock=clock)
    breaker.failed()
    return breaker, clock


def test_closed_lets_every_call_through() -> None:
    breaker = CircuitBreaker(5.0)
    assert all(breaker.allow() for _ in range(100))
    assert breaker.state == "closed"


def test_open_skips_calls_for_the_interval() -> None:
    breaker, clock = _opened()
    clock.now += 4.9
    assert not breaker.allow()
    assert breaker.state == "open"


def test_after_the_interval_one_trial_only() -> None:
    breaker, clock = _opened()
    clock.now += 5.0
    assert [breaker.allow() for _ in range(5)] == [True, False, False, False, False]
    assert breaker.state == "half-open"


def test_a_trial_that_succeeds_closes_it() -> None:
    breaker, clock = _opened()
    clock.now += 5.0
    assert breaker.allow()
    breaker.succeeded()
    assert breaker.state == "closed"
    assert all(breaker.allow() for _ in range(5))


def test_a_trial_that_fails_opens_it_for_another_interval() -> None:
    breaker, clock = _opened()
    clock.now += 5.0
    assert breaker.allow()
    breaker.failed()
    assert breaker.state == "open" and breaker.failures == 2
    clock.now += 4.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.allow()


def test_a_trial_that_never_reports_gives_way_after_an_interval() -> None:
    breaker, clock = _opened()
    clock.now += 5.0
    assert breaker.allow()  # the trial's caller crashes before saying how it went
    clock.now += 4.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.allow()  # a new trial
    assert not breaker.allow()


def test_a_check_closes_it_while_open() -> None:
    breaker, _ = _opened()
    breaker.succeeded()  # /ready's probe found the store working
    assert breaker.allow() and breaker.state == "closed"


def test_threads_arriving_together_after_the_interval_send_one_trial() -> None:
    breaker, clock = _opened()
    clock.now += 5.0
    callers = 32
    start = threading.Barrier(callers)

    def call(_: int) -> bool:
        start.wait()
        return breaker.allow()

    for _ in range(50):  # many rounds: a race would show in some of them
        with ThreadPoolExecutor(callers) as pool:
            allowed = list(pool.map(call, range(callers)))
        assert allowed.count(True) == 1, allowed.count(True)
        breaker.failed()  # the trial failed: open again, the next interval
        clock.now += 5.0


def test_asyncio_callers_wait_on_the_trial_and_follow_its_outcome() -> None:
    """Requests on one event loop: one goes to the store while the others are skipped;
    once the trial succeeded, every later request goes through again."""
    breaker, clock = _opened()
    clock.now += 5.0
    trial_running = asyncio.Event()
    finish_trial = asyncio.Event()
    calls: list[str] = []

    async def request(n: int) -> str:
        if not breaker.allow():
            return "skipped"
        calls.append(f"call {n}")
        trial_running.set()
        await finish_trial.wait()  # the store takes its time to answer the trial
        breaker.succeeded()
        return "called"

    async def scenario() -> tuple[list[str], list[str]]:
        during = [asyncio.create_task(request(n)) for n in range(20)]
        await trial_running.wait()
        # while the trial is out (bounded: a request let through would wait for it)
        late = [await asyncio.wait_for(request(100 + n), 2) for n in range(5)]
        finish_trial.set()
        first = await asyncio.gather(*during)
        return [*first, *late], [await request(200 + n) for n in range(5)]

    first, after = asyncio.run(scenario())
    assert first.count("called") == 1 and first.count("skipped") == 24, first
    assert after == ["called"] * 5
    assert len(calls) == 6
