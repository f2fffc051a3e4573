"""`make run`: start Postgres, Redis, migrations, the selected backend and the gateway.

Everything it starts is stopped on Ctrl-C (or SIGTERM); a backend or gateway process that
exits is started again (``devinfra.supervisor``). Data lives under ``.data/`` so a
second run finds the same collections, logs and cache.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from devinfra.ports import wait_for_port
from devinfra.stack import local_services
from devinfra.supervisor import Child, Supervisor

DATA_DIR = Path(".data")


@dataclass(frozen=True)
class Service:
    name: str
    module: str
    port: int
    args: tuple[str, ...] = ()


def _available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def service_url(service: Service) -> str:
    return f"http://127.0.0.1:{service.port}"


def _load_dotenv(path: Path = Path(".env")) -> dict[str, str]:
    """Minimal KEY=VALUE reader so child processes see .env even without the shell exporting it."""
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip().strip("'\"")
    return values


def _planned_services(env: dict[str, str]) -> list[Service]:
    backend = env.get("ML_SERVICE_BACKEND", "fastapi")
    ports = {
        "fastapi": int(env.get("FASTAPI_PORT", "8001")),
        "django": int(env.get("DJANGO_PORT", "8002")),
    }
    planned: list[Service] = []
    module = f"backends.{backend}_service"
    if backend in ports and _available(module):
        planned.append(Service(backend, module, ports[backend]))
    else:
        print(f"note: backend {backend!r} is not available in this checkout; not started")
    if _available("gateway"):
        planned.append(Service("gateway", "gateway", int(env.get("GATEWAY_PORT", "8000"))))
    return planned


def _migrate(env: dict[str, str]) -> None:
    if _available("backends.django_service.manage"):
        subprocess.run(
            [sys.executable, "-m", "backends.django_service.manage", "migrate", "--no-input"],
            env=env, check=True,
        )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    env = {**_load_dotenv(), **os.environ}
    # the gateway and the backends must share one; a fresh one per run when .env has none
    if not env.get("ML_SERVICE_GATEWAY_SECRET"):
        env["ML_SERVICE_GATEWAY_SECRET"] = secrets.token_urlsafe(32)
    with local_services(DATA_DIR.resolve(), env) as urls:
        env = {**env, "DATABASE_URL": urls.database_url, "REDIS_URL": urls.redis_url}
        print(f"postgres  {urls.database_url}\nredis     {urls.redis_url}")
        _migrate(env)
        supervisor = Supervisor()
        try:
            for service in _planned_services(env):
                child_env = {**env, "PORT": str(service.port)}
                if service.name != "gateway":  # the gateway finds the backend it routes to
                    env[f"ML_BACKEND_{service.name.upper()}_URL"] = service_url(service)
                command = [sys.executable, "-m", service.module, *service.args]
                supervisor.start(Child(service.name, command, child_env))
                wait_for_port("127.0.0.1", service.port, timeout_s=60)
                print(f"{service.name:<9} {service_url(service)}  (docs: /docs)")
            print("ready: Ctrl-C stops everything")
            signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
            return supervisor.watch()  # a service that exits is started again
        except KeyboardInterrupt:
            print("\nstopping...")
            return 0
        finally:
            # Ctrl-C reaches the whole process group: ignore repeats so cleanup completes.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            supervisor.stop()
