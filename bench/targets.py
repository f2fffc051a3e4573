"""What gets measured: each backend direct and through the gateway, started and verified.

A target is only benchmarked after it passed a quick contract check (TechEmpower's
verify-before-benchmark); a backend that cannot be imported or started is reported as
not available, never a crash of the whole run.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from devinfra.processes import running_service

# Registered backends: name -> module run as `python -m module` (the gateway's names).
BACKEND_MODULES: dict[str, str] = {
    "fastapi": "backends.fastapi_service",
    "django": "backends.django_service",
}
GATEWAY_MODULE = "gateway"
MIGRATE_MODULE = "backends.django_service.manage"
# The gateway runs as in production (API-key auth on); rate limits are off so the
# benchmark measures throughput, not the limiter's refusals.
BENCH_API_KEY = "bench-harness-key"


class TargetUnavailable(RuntimeError):
    """A backend or the gateway cannot be imported, started or verified; the message says why."""


@dataclass(frozen=True)
class Server:
    """A started service: its URL and the root pid whose process tree is measured."""

    name: str
    base_url: str
    pid: int
    log_path: Path


@dataclass(frozen=True)
class Verification:
    passed: bool
    summary: str
    seconds: float


def importable(module: str) -> bool:
    """True when ``python -m module`` can run (a package needs its ``__main__``)."""
    try:
        spec = importlib.util.find_spec(module)
        if spec is None:
            return False
        if spec.submodule_search_locations is None:
            return True
        return importlib.util.find_spec(f"{module}.__main__") is not None
    except (ImportError, ValueError):
        return False


def migrate(env: Mapping[str, str]) -> None:
    """Apply the shared schema (Django migrations); every backend refuses to start without it."""
    if not importable(MIGRATE_MODULE):
        raise TargetUnavailable(f"{MIGRATE_MODULE} is missing: cannot create the schema")
    done = subprocess.run(
        [sys.executable, "-m", MIGRATE_MODULE, "migrate", "--no-input"],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise TargetUnavailable(f"migrations failed: {done.stderr.strip()[-800:]}")


def gateway_env(backend: str, backend_url: str, base_env: Mapping[str, str]) -> dict[str, str]:
    return {
        **base_env,
        "ML_SERVICE_BACKEND": backend,
        f"ML_BACKEND_{backend.upper()}_URL": backend_url,
        "GATEWAY_API_KEYS": BENCH_API_KEY,
        "GATEWAY_RATE_LIMIT_PER_MINUTE": "0",
    }


GATEWAY_HEADERS = (f"X-API-Key: {BENCH_API_KEY}",)


@contextlib.contextmanager
def started(
    name: str, module: str, env: Mapping[str, str], log_dir: Path, *, expect_backend: str
) -> Iterator[Server]:
    """Start ``python -m module`` on a free port; fail unless /health names ``expect_backend``."""
    if not importable(module):
        raise TargetUnavailable(f"{module} is not importable in this checkout")
    stack = contextlib.ExitStack()
    try:
        service = stack.enter_context(running_service(module, env, log_dir, ready_timeout_s=120))
    except (RuntimeError, TimeoutError) as exc:
        stack.close()
        raise TargetUnavailable(f"{module} did not become ready: {exc}") from exc
    with stack:
        headers = dict(_header(h) for h in GATEWAY_HEADERS) if module == GATEWAY_MODULE else {}
        try:
            health = httpx.get(service.base_url + "/health", headers=headers, timeout=10).json()
        except (httpx.HTTPError, ValueError) as exc:
            raise TargetUnavailable(f"{service.base_url}/health unreadable: {exc}") from exc
        # A stale server already on the port would answer /ready too: check who answers.
        if health.get("backend") != expect_backend:
            raise TargetUnavailable(f"{service.base_url}/health names {health.get('backend')!r}")
        yield Server(name, service.base_url, service.process.pid, service.log_path)


def _header(line: str) -> tuple[str, str]:
    key, _, value = line.partition(":")
    return key.strip(), value.strip()


def verify(
    base_url: str,
    *,
    phases: str,
    max_examples: int,
    report_dir: Path,
    headers: tuple[str, ...] = (),
    timeout_s: float = 600,
) -> Verification:
    """Run `python -m contract check` against ``base_url``; passed = exit code 0."""
    cmd = [
        sys.executable, "-m", "contract", "check", "--base-url", base_url,
        "--max-examples", str(max_examples), "--phases", phases, "--report", str(report_dir),
    ]  # fmt: skip
    for header in headers:
        cmd += ["-H", header]
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return Verification(False, f"contract check timed out after {timeout_s}s", timeout_s)
    seconds = time.perf_counter() - start
    lines = [ln for ln in done.stdout.splitlines() if ln.strip()]
    verdict = next(
        (ln for ln in reversed(lines) if re.match(r"^(PASSED|FAILED)", ln)),
        (lines[-1] if lines else done.stderr.strip()[-300:]) or f"exit {done.returncode}",
    )
    return Verification(done.returncode == 0, verdict.strip(), seconds)
