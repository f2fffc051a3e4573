"""The gateway's own /health (liveness) and /ready (the backend's readiness, checked live)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import UTC, datetime
from typing import Any

from gateway.errors import classify
from gateway.registry import Backend, BackendRegistry
from gateway.upstream import Timeouts, Upstream
from shared_schemas import API_VERSION

SERVICE = "gateway"


def health_body(registry: BackendRegistry) -> bytes:
    return json.dumps(
        {
            "status": "ok",
            "service": SERVICE,
            "version": API_VERSION,
            "backend": registry.selected.name,
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
    ).encode()


async def check_backend(
    upstream: Upstream, backend: Backend, timeout_s: float, request_id: str
) -> dict[str, Any]:
    """GET the backend's /ready: ``{"ok", "latency_ms", "detail"}`` like the backends' checks."""
    start = time.perf_counter()
    headers = [(b"x-request-id", request_id.encode()), (b"accept", b"application/json")]
    try:
        response = await upstream.send(
            "GET", backend.base_url + "/ready", headers, b"", Timeouts(timeout_s, timeout_s)
        )
        try:
            content = b"".join([chunk async for chunk in response.chunks()])
        finally:
            await response.aclose()
    except Exception as exc:
        failure = classify(exc, backend.name)
        if failure is None:
            raise
        detail = failure.message
        ok = False
    else:
        ok = response.status == 200
        detail = f"{backend.base_url}/ready answered {response.status}"
        if not ok:
            detail += f": {_error_message(content)}"
    latency_ms = round((time.perf_counter() - start) * 1000, 2)
    return {"ok": ok, "latency_ms": latency_ms, "detail": detail}


def _error_message(content: bytes) -> str:
    try:
        return str(json.loads(content)["error"]["message"])[:200]
    except (ValueError, KeyError, TypeError):
        return content[:200].decode(errors="replace")


async def readiness(
    upstream: Upstream,
    registry: BackendRegistry,
    timeout_s: float,
    request_id: str,
) -> tuple[int, dict[str, Any]]:
    """Ready when the selected backend is; "degraded" when only the fallback is.

    Both backends are checked at once, so /ready answers within one ``timeout_s`` even
    when the selected backend hangs (checked one after the other it took two). The
    fallback's check is only waited for, and reported, when the selected backend fails.
    """
    primary = registry.selected
    fallback = (
        asyncio.create_task(check_backend(upstream, registry.fallback, timeout_s, request_id))
        if registry.fallback is not None
        else None
    )
    try:
        checks = {
            f"backend:{primary.name}": await check_backend(upstream, primary, timeout_s, request_id)
        }
        primary_ok = checks[f"backend:{primary.name}"]["ok"]
        fallback_ok = False
        if fallback is not None and registry.fallback is not None and not primary_ok:
            check = await fallback
            checks[f"backend:{registry.fallback.name}"] = check
            fallback_ok = check["ok"]
    finally:
        if fallback is not None and not fallback.done():
            fallback.cancel()  # the selected backend answered: its check is not needed
            with contextlib.suppress(asyncio.CancelledError):
                await fallback
    if primary_ok or fallback_ok:
        # the contract's ReadyResponse: the backend that answers is in X-ML-Backend
        body = {"ready": True, "status": "ok" if primary_ok else "degraded", "checks": checks}
        return 200, body
    details = [
        {"loc": ["checks", name], "message": check["detail"] or "", "type": "check_failed"}
        for name, check in checks.items()
        if not check["ok"]
    ]
    return 503, {"message": f"backend {registry.selected.name!r} is not ready", "details": details}
