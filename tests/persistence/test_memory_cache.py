"""The per-process layer in front of Redis: bounded by bytes and age, least recently used out."""

from __future__ import annotations

from backends.core.persistence.memory_cache import MAX_ENTRY_BYTES, MemoryCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_is_served_until_it_expires() -> None:
    clock = Clock()
    cache = MemoryCache(max_bytes=1000, ttl_s=10, clock=clock)
    cache.put("k", b"body")
    clock.now = 9.9
    assert cache.get("k") == b"body"
    clock.now = 10.0
    assert cache.get("k") is None
    assert len(cache) == 0 and cache.size_bytes == 0


def test_the_least_recently_used_entries_go_first_when_over_the_byte_bound() -> None:
    cache = MemoryCache(max_bytes=10, ttl_s=60)
    cache.put("a", b"aaaa")
    cache.put("b", b"bbbb")
    assert cache.get("a") == b"aaaa"  # a is now the most recent
    cache.put("c", b"cccc")
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c")) == (b"aaaa", b"cccc")
    assert cache.size_bytes == 8


def test_replacing_a_key_keeps_the_byte_count_exact() -> None:
    cache = MemoryCache(max_bytes=100, ttl_s=60)
    cache.put("k", b"12345")
    cache.put("k", b"12")
    assert cache.size_bytes == 2 and cache.get("k") == b"12"


def test_entries_too_large_to_be_worth_keeping_stay_out() -> None:
    cache = MemoryCache(max_bytes=10 * MAX_ENTRY_BYTES, ttl_s=60)
    cache.put("big", b"x" * (MAX_ENTRY_BYTES + 1))
    small = MemoryCache(max_bytes=4, ttl_s=60)
    small.put("k", b"12345")
    assert cache.get("big") is None and small.get("k") is None
