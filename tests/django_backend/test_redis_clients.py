"""ThreadRedis: one Redis connection per request thread, reused, replaced when closed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
import redis

from backends.django_service.mlapi.redis_clients import ThreadRedis

T = TypeVar("T")


@pytest.fixture
def thread_redis(redis_url: str) -> Iterator[ThreadRedis]:
    client = ThreadRedis.from_url(redis_url, 0.5)
    yield client
    client.close()


def _in_thread(work: Callable[[], T]) -> T:
    results: list[T] = []
    thread = threading.Thread(target=lambda: results.append(work()))
    thread.start()
    thread.join(10)
    assert results, "the thread did not finish its work"
    return results[0]


def _connection_id(client: ThreadRedis) -> int:
    """The id Redis gives the connection this thread's commands go on."""
    return int(client.client().client_id())


def test_each_thread_keeps_its_own_connection(thread_redis: ThreadRedis) -> None:
    """Commands of one thread go on one connection, and two threads alive at once use two
    (a pooled client hands the one idle connection to whichever thread asks)."""
    thread_redis.set("threadredis:key", b"value", ex=60)
    mine = _connection_id(thread_redis)
    assert thread_redis.get("threadredis:key") == b"value"
    assert _connection_id(thread_redis) == mine

    other_started = threading.Event()
    done = threading.Event()

    def other() -> int:
        ident = _connection_id(thread_redis)
        other_started.set()
        done.wait(10)  # still alive (holding its client) while the main thread asks again
        return ident

    results: list[int] = []
    thread = threading.Thread(target=lambda: results.append(other()))
    thread.start()
    assert other_started.wait(10)
    assert _connection_id(thread_redis) == mine
    done.set()
    thread.join(10)
    assert results and results[0] != mine


def test_a_finished_thread_gives_its_connection_back(thread_redis: ThreadRedis) -> None:
    """The next thread reuses it: connections stay bounded by the threads alive at once."""
    first = _in_thread(lambda: _connection_id(thread_redis))
    second = _in_thread(lambda: _connection_id(thread_redis))
    assert second == first


def test_a_connection_redis_closed_costs_no_failed_command(
    thread_redis: ThreadRedis, redis_client: redis.Redis[bytes]
) -> None:
    """After a restart every thread's connection is dead: its next command goes again on
    a new connection instead of failing (which would open the cache's breaker)."""
    thread_redis.set("threadredis:after-kill", b"kept", ex=60)
    before = _connection_id(thread_redis)
    assert redis_client.client_kill_filter(_id=str(before)) == 1

    assert thread_redis.get("threadredis:after-kill") == b"kept"
    assert _connection_id(thread_redis) != before


def test_a_redis_that_is_away_fails_the_command() -> None:
    away = ThreadRedis.from_url("redis://127.0.0.1:1/0", 0.5)
    with pytest.raises(redis.ConnectionError):
        away.get("threadredis:any")
    with pytest.raises(redis.ConnectionError):  # and again: nothing half-made was kept
        away.ping()
