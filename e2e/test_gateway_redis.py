"""The gateway's Redis (rate limits and credit budgets) stopped or frozen under traffic.

A gateway with a rate limit and a database key whose organisation has a budget reaches
Redis through a relay the test switches off or freezes (a frozen relay keeps connections
open and answers nothing, as a SIGSTOPped Redis does). Both fail open, deliberately
(gateway/rate_limit.py, gateway/budgets.py): the client keeps getting its 200s, and the
gateway's one Redis breaker makes the whole fault cost one Redis timeout per
GATEWAY_REDIS_RETRY_S, not one (or two, limit then budget) per request. Once Redis is back
the gateway counts again by itself: the key's rate-limit and budget counters move.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import redis

from devinfra.processes import RunningService
from e2e.conftest import DATABASE_KEYS_ENV, Backends, GatewayStarter, create_key, gateway_cli
from tests.persistence.tcp_proxy import TcpProxy, relay_to

REDIS_TIMEOUT_S = 0.5
# longer than a fault scenario: while the fault lasts, Redis is asked once
RETRY_S = 4.0
FAULT_REQUESTS = 10
CLIENT_TIMEOUT_S = 5.0  # bounds each request: without a breaker nothing waits this long


@dataclass
class Stack:
    gateway: RunningService
    relay: TcpProxy
    redis: redis.Redis[bytes]
    key_id: str
    key: str
    org: str


@pytest.fixture(scope="module")
def stack(backends: Backends, start_gateway: GatewayStarter, redis_url: str) -> Iterator[Stack]:
    host_port, db = redis_url.split("//", 1)[1].split("/", 1)
    org = f"redis-fault-{uuid.uuid4().hex[:8]}"
    key_id, key = create_key(backends, org, "redis-fault-user")
    gateway_cli(
        backends, "budget", "set", "--org", org, "--credits", "1000000000", "--period", "day"
    )
    with relay_to(f"postgresql://x@{host_port}/0") as relay:
        env = {
            **DATABASE_KEYS_ENV,
            "REDIS_URL": f"redis://127.0.0.1:{relay.port}/{db}",
            "GATEWAY_RATE_LIMIT_PER_MINUTE": "100000",
            "GATEWAY_RATE_LIMIT_REDIS_TIMEOUT_S": str(REDIS_TIMEOUT_S),
            "GATEWAY_BUDGET_REDIS_TIMEOUT_S": str(REDIS_TIMEOUT_S),
            "GATEWAY_REDIS_RETRY_S": str(RETRY_S),
        }
        with (
            start_gateway("fastapi", env) as gateway,
            redis.Redis.from_url(redis_url) as direct,
        ):
            yield Stack(gateway, relay, direct, key_id, key, org)


def _send(stack: Stack, count: int, phase: str) -> list[int]:
    statuses, slowest = [], 0.0
    with httpx.Client(base_url=stack.gateway.base_url, timeout=CLIENT_TIMEOUT_S) as client:
        for _ in range(count):
            started = time.monotonic()
            response = client.post(
                "/api/v1/analysis/sentiment",
                json={"text": f"is the limiter there {uuid.uuid4()}"},
                headers={"Authorization": f"Bearer {stack.key}"},
            )
            slowest = max(slowest, time.monotonic() - started)
            statuses.append(response.status_code)
    print(f"{phase}: {count} requests, slowest {slowest * 1000:.0f} ms", flush=True)
    return statuses


def _fail_open(stack: Stack) -> int:
    text = httpx.get(stack.gateway.base_url + "/metrics", timeout=5).text
    found = re.findall(r"^gateway_(?:rate_limit|budget)_fail_open_total\S* (\S+)$", text, re.M)
    return sum(int(float(value)) for value in found)


def _counters(stack: Stack) -> tuple[int, int]:
    """The key's rate-limit count this minute and its organisation's budget spend today."""
    limited = stack.redis.get(f"gw:rl:key:{stack.key_id}:{int(time.time() // 60)}")
    spent = stack.redis.get(
        f"gw:budget:organization:{stack.org}:{time.strftime('%Y-%m-%d', time.gmtime())}"
    )
    return int(limited or 0), int(spent or 0)


def _recovered(stack: Stack, before: tuple[int, int], timeout_s: float = RETRY_S + 10) -> bool:
    """True once requests move both counters again (the breaker closed by itself)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert set(_send(stack, 1, "recovering")) == {200}
        now = _counters(stack)
        if now[0] > before[0] and now[1] > before[1]:
            return True
        time.sleep(0.3)
    return False


@pytest.mark.parametrize("fault", ["down", "freeze"])
def test_requests_pass_while_the_gateway_redis_is_away(stack: Stack, fault: str) -> None:
    time.sleep(RETRY_S)  # a breaker opened by the previous scenario has closed again
    assert set(_send(stack, 2, f"{fault}-before")) == {200}
    counted = _counters(stack)
    assert counted[0] > 0 and counted[1] > 0, counted  # Redis is used while it is there
    failed_open = _fail_open(stack)
    sent_before = stack.relay.sent
    getattr(stack.relay, fault)()
    try:
        during = _send(stack, FAULT_REQUESTS, fault)
        commands = stack.relay.sent - sent_before
    finally:
        stack.relay.up() if fault == "down" else stack.relay.thaw()
    skipped = _fail_open(stack) - failed_open
    assert set(during) == {200}
    # every request passed unlimited and unbudgeted, each check counted as failing open
    assert skipped >= FAULT_REQUESTS, skipped
    if fault == "freeze":
        # one command waited for its timeout, then Redis was skipped: with no shared
        # breaker the budget check waited once more after the rate limit (2); with none
        # at all each of the 10 requests sent a script, an MGET and an INCRBY (30)
        assert commands <= 1, commands
    assert _recovered(stack, _counters(stack))
