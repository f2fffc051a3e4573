"""Local services for `make run` and the test suite: use the URLs given, else start them."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from devinfra.postgres import LocalPostgres
from devinfra.redis import LocalRedis


@dataclass(frozen=True)
class ServiceUrls:
    database_url: str
    redis_url: str


@contextlib.contextmanager
def local_services(data_dir: Path, env: dict[str, str] | None = None) -> Iterator[ServiceUrls]:
    """Yield Postgres and Redis URLs; start embedded servers only for the ones not configured."""
    env = dict(os.environ) if env is None else env
    with contextlib.ExitStack() as stack:
        database_url = env.get("DATABASE_URL") or _started(
            stack, LocalPostgres(data_dir / "postgres")
        )
        redis_url = env.get("REDIS_URL") or _started(stack, LocalRedis(data_dir / "redis"))
        yield ServiceUrls(database_url=database_url, redis_url=redis_url)


def _started(stack: contextlib.ExitStack, server: LocalPostgres | LocalRedis) -> str:
    url = server.start()
    stack.callback(server.stop)
    return url
