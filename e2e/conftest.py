"""Real processes for end-to-end tests: both backends on one Postgres and Redis, gateways."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest

from devinfra.processes import RunningService, running_service

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
    def __call__(self, backend: str) -> AbstractContextManager[RunningService]: ...


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

    def start(backend: str) -> AbstractContextManager[RunningService]:
        env = {
            **backends.env,
            "ML_SERVICE_BACKEND": backend,
            **{
                f"ML_BACKEND_{name.upper()}_URL": svc.base_url
                for name, svc in backends.services.items()
            },
        }
        return running_service("gateway", env, backends.log_dir)

    return start
