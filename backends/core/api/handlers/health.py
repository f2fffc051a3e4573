"""Process health: /health and /live, and the readiness verdict each backend serves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from backends.core.api.api_request import ApiRequest, Handler
from backends.core.engine import Engine
from backends.core.errors import ProviderUnavailable
from shared_schemas import API_VERSION
from shared_schemas.health import CheckResult, HealthResponse, LiveResponse, ReadyResponse

SERVICE_NAME = "ml-api"
# /ready answers within this, whatever hangs: each check that has not finished by then
# counts as failed ("timed out"). Below the gateway's 5 s health timeout, so the gateway
# relays the backend's verdict instead of its own timeout. Before, the checks ran one
# after another with no bound on the engine's: 9.4 s (and > 30 s) on a frozen Postgres.
READY_TIMEOUT_S = 3.0
# Redis is the response cache's hot layer: without it requests are served (as cache
# misses), so a load balancer must not drain the process. Reported (degraded), not
# required; it was required, and /ready was 503 while only Redis was down.
REDIS_REQUIRED = False


class CheckLike(Protocol):
    """What ``ready_response`` reads from one check."""

    @property
    def ok(self) -> bool: ...
    @property
    def latency_ms(self) -> float: ...
    @property
    def detail(self) -> str | None: ...
    @property
    def required(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Check:
    """Outcome of one readiness probe; a failed optional check only degrades readiness."""

    ok: bool
    latency_ms: float
    detail: str | None = None
    required: bool = True


def timed_out(latency_ms: float) -> Check:
    """A check still running at the readiness deadline (it is left to finish)."""
    return Check(False, latency_ms, f"no answer within {READY_TIMEOUT_S:g} s")


def ready_response(checks: Mapping[str, CheckLike]) -> ReadyResponse:
    """Ready (ok or degraded) unless a required check failed: then 503 naming the failures."""
    failed_required = [name for name, check in checks.items() if check.required and not check.ok]
    if failed_required:
        details: list[dict[str, Any]] = [
            {
                "loc": ["checks", name],
                "message": checks[name].detail or "check failed",
                "type": "check_failed",
            }
            for name in failed_required
        ]
        raise ProviderUnavailable(
            "not ready: " + ", ".join(failed_required) + " unavailable", details=details
        )
    degraded = any(not check.ok for check in checks.values())
    return ReadyResponse(
        ready=True,
        status="degraded" if degraded else "ok",
        checks={
            name: CheckResult(
                ok=check.ok, latency_ms=max(0.0, check.latency_ms), detail=check.detail
            )
            for name, check in checks.items()
        },
    )


def health_status(engine: Engine, api_request: ApiRequest) -> HealthResponse:
    return HealthResponse(
        status="ok",
        service=SERVICE_NAME,
        version=API_VERSION,
        backend=engine.service_name,
        timestamp=datetime.now(UTC),
    )


def health_live(engine: Engine, api_request: ApiRequest) -> LiveResponse:
    return LiveResponse(live=True, timestamp=datetime.now(UTC))


HANDLERS: dict[str, Handler] = {
    "health_status": health_status,
    "health_live": health_live,
}
