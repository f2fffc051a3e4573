"""Redis-backed sliding-window rate limits, shared by every gateway replica; fails open.

Redis down or frozen: requests pass unlimited (counted in
``gateway_rate_limit_fail_open_total``). The limit protects the backends from one client's
excess; failing closed would turn a Redis outage into a total API outage, and the backends
still shed overload themselves (503 with Retry-After from full inference queues). The
gateway's Redis breaker (``shared_schemas.breaker``, shared with the budgets) keeps a dead
Redis to one ``GATEWAY_RATE_LIMIT_REDIS_TIMEOUT_S`` wait per ``GATEWAY_REDIS_RETRY_S``;
the requests in between do not touch Redis at all.
"""

from __future__ import annotations

import logging
import math
import time

import redis.asyncio as redis
from redis.exceptions import RedisError

from gateway.metrics import GatewayMetrics
from shared_schemas.breaker import CircuitBreaker

log = logging.getLogger("gateway.rate_limit")

WINDOW_S = 60
# Sliding-window counter: the previous minute's count, weighted by how much of it still
# overlaps the last 60 s, plus this minute's. Denied requests are not counted, so a client
# that keeps retrying is let back in as soon as its earlier traffic ages out.
_SCRIPT = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local prev = tonumber(redis.call('GET', KEYS[2]) or '0')
if prev * tonumber(ARGV[2]) + cur >= tonumber(ARGV[1]) then
  return {0, cur, prev}
end
cur = redis.call('INCR', KEYS[1])
if cur == 1 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
return {1, cur, prev}
"""


def retry_after_s(limit: int, current: int, previous: int, elapsed: float) -> int:
    """Whole seconds until the weighted count drops below ``limit``."""
    if current >= limit or previous <= 0:
        wait = WINDOW_S - elapsed
    else:
        # prev * (1 - t/60) + cur < limit  <=>  t > 60 * (1 - (limit - cur) / prev)
        wait = WINDOW_S * (1 - (limit - current) / previous) - elapsed
    return max(1, math.ceil(wait))


class RateLimiter:
    """``per_minute`` requests per identity (API key id or client IP) over a sliding minute."""

    def __init__(
        self,
        redis_url: str,
        per_minute: int,
        metrics: GatewayMetrics,
        breaker: CircuitBreaker,
        timeout_s: float = 0.25,
    ) -> None:
        self.per_minute = per_minute
        self._metrics = metrics
        self._client = redis.Redis.from_url(
            redis_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._script = self._client.register_script(_SCRIPT)
        self._breaker = breaker

    async def check(self, identity: str) -> int | None:
        """None when the request may pass, else the Retry-After in seconds."""
        if not self._breaker.allow():
            self._metrics.rate_limit_fail_open.inc()
            return None
        now = time.time()
        window = int(now // WINDOW_S)
        elapsed = now - window * WINDOW_S
        keys = [f"gw:rl:{identity}:{window}", f"gw:rl:{identity}:{window - 1}"]
        try:
            allowed, current, previous = await self._script(
                keys=keys, args=[self.per_minute, 1 - elapsed / WINDOW_S, 2 * WINDOW_S]
            )
        except (RedisError, OSError, TimeoutError) as exc:
            # Rate limiting protects the backends; losing Redis must not take the API down.
            # While it is down, skip it for a few seconds instead of paying a timeout each time.
            self._breaker.failed()
            self._metrics.rate_limit_fail_open.inc()
            log.warning(
                "rate limit store unreachable (%s); failing open for %g s",
                type(exc).__name__,
                self._breaker.retry_s,
            )
            return None
        self._breaker.succeeded()
        if allowed:
            return None
        return retry_after_s(self.per_minute, int(current), int(previous), elapsed)

    async def aclose(self) -> None:
        await self._client.aclose()  # type: ignore[attr-defined]  # stubs predate redis 5
