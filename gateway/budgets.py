"""Credit budgets per key or organisation, spent in Redis, reconciled from Postgres.

Each budget's spend for the current period (a UTC day or month) is one Redis counter,
``gw:budget:<kind>:<subject>:<period start>``, shared by every gateway replica. The gateway
reads the key's counters before it forwards (one MGET: refused at or over the budget) and
adds the backend's ``X-Credits-Charged`` after the answer (INCRBY), so requests already in
flight when a budget runs out may overshoot it by their own cost; credits are only known
once the work is done. Postgres holds the truth (``ml_service_requests.credits_charged``):
``reconcile`` raises each counter to the stored sum, which repairs a counter lost with
Redis or charges the backends recorded that the gateway did not see.

Redis down or frozen: budgets are not enforced (fail open, counted in
``gateway_budget_fail_open_total``), as with rate limits. Chosen deliberately: a budget is
a spending guard, not the bill. Every charge is still recorded by the backends in
Postgres (billing and ``GET /gateway/usage`` read that), and reconciliation raises the
counters to it once Redis is back, so an outage can only let a key overshoot its budget
by what it spends during the outage (bounded by its rate); failing closed would refuse
every request of every key with a budget for as long as Redis is away. The gateway's Redis
breaker (``shared_schemas.breaker``, shared with the rate limiter) keeps a dead Redis to
one timeout per ``GATEWAY_REDIS_RETRY_S``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import redis.asyncio as redis
from redis.exceptions import RedisError

from gateway.keys import Budget
from gateway.metrics import GatewayMetrics
from shared_schemas.breaker import CircuitBreaker

log = logging.getLogger("gateway.budgets")

PERIODS = ("day", "month")
# The counter outlives its period by a day: a replica whose clock lags still finds it.
_GRACE = timedelta(days=1)
# Raise a counter to at least ARGV[1] (never lower it: Redis may hold charges that the
# backends' log writers have not flushed to Postgres yet), and let it expire at ARGV[2].
_RAISE_SCRIPT = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then
  redis.call('SET', KEYS[1], ARGV[1], 'EXAT', ARGV[2])
  return 1
end
return 0
"""


def charged_credits(value: bytes) -> int:
    """The backend's ``X-Credits-Charged`` value; anything but a non-negative int is 0.

    At most 18 digits: Redis counters are signed 64-bit, and one absurd value must not make
    every later INCRBY of the budget fail.
    """
    return int(value) if value.isdigit() and len(value) <= 18 else 0


def period_bounds(period: str, now: datetime) -> tuple[datetime, datetime]:
    """The UTC start and end of the day or month containing ``now``."""
    if period == "day":
        start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + timedelta(days=1)
    start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


def counter_key(budget: Budget, start: datetime) -> str:
    return f"gw:budget:{budget.kind}:{budget.subject}:{start:%Y-%m-%d}"


class BudgetExceeded(Exception):
    """A budget of the key is used up; ``retry_after_s`` is the time to the period's end."""

    def __init__(self, budget: Budget, spent: int, resets_at: datetime, retry_after_s: int):
        whose = "API key" if budget.kind == "key" else f"organization {budget.subject!r}"
        super().__init__(
            f"credit budget of {budget.credits} per {budget.period} for {whose} is used up"
            f" ({spent} spent); it resets at {resets_at:%Y-%m-%dT%H:%M:%SZ}"
        )
        self.retry_after_s = retry_after_s


# The sums reconcile compares the counters with: one per budget, over the current period.
_SPENT_SQL = {
    "key": "SELECT coalesce(sum(credits_charged), 0) FROM ml_service_requests"
    " WHERE api_key_id = $1 AND created_at >= $2 AND created_at < $3",
    "organization": "SELECT coalesce(sum(credits_charged), 0) FROM ml_service_requests"
    " WHERE organization_id = $1 AND created_at >= $2 AND created_at < $3",
}
_BUDGETS_SQL = "SELECT subject_kind, subject_id, period, credits FROM ml_credit_budgets"


class Budgets:
    """Checks and charges credit budgets in Redis; fails open while Redis is unreachable."""

    def __init__(
        self,
        redis_url: str,
        metrics: GatewayMetrics,
        breaker: CircuitBreaker,
        timeout_s: float = 0.25,
    ) -> None:
        self._metrics = metrics
        self._client = redis.Redis.from_url(
            redis_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._raise = self._client.register_script(_RAISE_SCRIPT)
        self._breaker = breaker

    def _store_down(self, exc: BaseException) -> None:
        self._breaker.failed()
        log.warning(
            "budget store unreachable (%s); budgets unchecked for %g s",
            type(exc).__name__,
            self._breaker.retry_s,
        )

    def _skipped(self) -> bool:
        return not self._breaker.allow()

    async def check(self, budgets: Sequence[Budget], now: datetime | None = None) -> None:
        """Raise BudgetExceeded when one of ``budgets`` is used up for its current period."""
        if not budgets:
            return
        if self._skipped():
            self._metrics.budget_fail_open.inc()
            return
        now = now or datetime.now(UTC)
        bounds = [period_bounds(b.period, now) for b in budgets]
        try:
            values = await self._client.mget(
                [counter_key(b, s) for b, (s, _) in zip(budgets, bounds, strict=True)]
            )
        except (RedisError, OSError, TimeoutError) as exc:
            self._store_down(exc)
            self._metrics.budget_fail_open.inc()
            return
        self._breaker.succeeded()
        for budget, (_, end), value in zip(budgets, bounds, values, strict=True):
            spent = int(value or 0)
            if spent >= budget.credits:
                wait = max(1, math.ceil((end - now).total_seconds()))
                raise BudgetExceeded(budget, spent, end, wait)

    async def charge(
        self, budgets: Sequence[Budget], credits: int, now: datetime | None = None
    ) -> None:
        """Add ``credits`` to each budget's counter for the current period."""
        if not budgets or credits <= 0:
            return
        if self._skipped():
            self._metrics.budget_fail_open.inc()
            return
        now = now or datetime.now(UTC)
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                for budget in budgets:
                    start, end = period_bounds(budget.period, now)
                    key = counter_key(budget, start)
                    pipe.incrby(key, credits)
                    pipe.expireat(key, end + _GRACE)
                await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            self._store_down(exc)
            self._metrics.budget_fail_open.inc()
            return
        self._breaker.succeeded()

    async def reconcile(self, pool: asyncpg.Pool, now: datetime | None = None) -> int:
        """Raise every budget's counter to the credits Postgres recorded this period.

        Returns how many counters were raised.
        """
        now = now or datetime.now(UTC)
        raised = 0
        async with pool.acquire() as conn:
            rows = await conn.fetch(_BUDGETS_SQL)
            for kind, subject, period, credits in rows:
                budget = Budget(kind, subject, period, credits)
                start, end = period_bounds(period, now)
                spent = await conn.fetchval(_SPENT_SQL[kind], subject, start, end)
                expires = int((end + _GRACE).timestamp())
                raised += int(
                    await self._raise(keys=[counter_key(budget, start)], args=[spent, expires])
                )
        return raised

    async def aclose(self) -> None:
        await self._client.aclose()  # type: ignore[attr-defined]  # stubs predate redis 5
