"""Real processes for end-to-end tests: both backends on one Postgres and Redis, gateways."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest

from devinfra.processes import RunningService, running_service

GATEWAY_SECRET = "e2e-gateway-secret"
BODY_TIMEOUT_S = 2.0
BACKEND_MODULES = {"fastapi": "backends.fastapi_service", "django": "backends.django_service"}


def backend_env(database_url: str, redis_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "EMBEDDING_PROVIDER": "local",
        "LLM_PROVIDER": "extractive",
        "VECTOR_STORE": "pgvector",
        "OPENAI_API_KEY": "",
        "FASTAPI_LOG_FLUSH_INTERVAL_S": "0.2",
        "DJANGO_LOG_FLUSH_INTERVAL_S": "0.2",
        # the gateways started below get it too: attribution reaches the logs only with it
        "ML_SERVICE_GATEWAY_SECRET": GATEWAY_SECRET,
        # short, so the slow-body tests wait little (each is one body timeout)
        "FASTAPI_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
        "DJANGO_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
    }


@dataclass(frozen=True)
class Backends:
    services: dict[str, RunningService]
    env: dict[str, str]
    log_dir: Path


class GatewayStarter(Protocol):
    def __call__(
        self, backend: str, extra_env: Mapping[str, str] | None = None
    ) -> AbstractContextManager[RunningService]: ...


@pytest.fixture(scope="session")
def backends(
    migrated_pg_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backends]:
    """Both backends, sharing the session's database and Redis, for the whole e2e run."""
    env = backend_env(migrated_pg_url, redis_url)
    log_dir = tmp_path_factory.mktemp("e2e-logs")
    with ExitStack() as stack:
        services = {
            name: stack.enter_context(running_service(module, env, log_dir))
            for name, module in BACKEND_MODULES.items()
        }
        yield Backends(services, env, log_dir)


@pytest.fixture(scope="session")
def start_gateway(backends: Backends) -> GatewayStarter:
    """A gateway routed to ``backend``: what editing ML_SERVICE_BACKEND and restarting does."""

    def start(
        backend: str, extra_env: Mapping[str, str] | None = None
    ) -> AbstractContextManager[RunningService]:
        env = {
            **backends.env,
            "ML_SERVICE_BACKEND": backend,
            **{
                f"ML_BACKEND_{name.upper()}_URL": svc.base_url
                for name, svc in backends.services.items()
            },
            **(extra_env or {}),
        }
        return running_service("gateway", env, backends.log_dir)

    return start


# what a gateway needs to look keys up in the session's Postgres (next to backends.env)
DATABASE_KEYS_ENV = {"GATEWAY_DATABASE_KEYS": "true"}


def gateway_cli(backends: Backends, *argv: str) -> str:
    """Run ``python -m gateway <argv>`` against the session's database; its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "gateway", *argv],
        env={**os.environ, **backends.env},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def create_key(backends: Backends, org: str, user: str, *extra: str) -> tuple[str, str]:
    """A new API key (its id, the key) made with the CLI, as an operator would."""
    out = gateway_cli(
        backends, "keys", "create", "--name", "e2e", "--user", user, "--org", org, *extra
    )
    found = re.search(r"^id\s+(\S+)\n^key\s+(\S+)$", out, re.MULTILINE)
    assert found, out
    return found[1], found[2]
