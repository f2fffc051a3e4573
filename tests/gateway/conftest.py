"""Fixtures: real upstreams on free ports and a gateway served by uvicorn per test."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devinfra.ports import free_port
from gateway.app import GatewayApp, create_app
from gateway.settings import GatewaySettings
from tests.gateway.upstreams import EchoUpstream, ThreadServer, serving


def make_settings(backends: dict[str, str], backend: str, **overrides: Any) -> GatewaySettings:
    """Settings that ignore the environment's gateway knobs (auth, limits, Redis) unless given."""
    values: dict[str, Any] = {
        "backends": backends,
        "backend": backend,
        "redis_url": None,
        "api_keys": "",
        "gateway_secret": "",
        "rate_limit_per_minute": 0,
        "fallback": None,
    }
    return GatewaySettings(_env_file=None, **(values | overrides))  # type: ignore[call-arg]


class RunningGateway:
    def __init__(self, app: GatewayApp, server: ThreadServer) -> None:
        self.app = app
        self.url = server.url
        self.client = httpx.Client(base_url=server.url, timeout=30)


@contextlib.contextmanager
def run_gateway(settings: GatewaySettings) -> Iterator[RunningGateway]:
    app = create_app(settings)
    with serving(app) as server:
        gateway = RunningGateway(app, server)
        try:
            yield gateway
        finally:
            gateway.client.close()


@pytest.fixture(scope="module")
def fast() -> Iterator[ThreadServer]:
    with serving(EchoUpstream("fast")) as server:
        yield server


@pytest.fixture(scope="module")
def other() -> Iterator[ThreadServer]:
    with serving(EchoUpstream("other")) as server:
        yield server


@pytest.fixture
def dead_url() -> str:
    """A URL where nothing listens (connection refused)."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def gateway(fast: ThreadServer) -> Iterator[RunningGateway]:
    with run_gateway(make_settings({"fast": fast.url}, "fast")) as running:
        yield running
