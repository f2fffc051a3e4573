"""Session fixtures for tests/ and e2e/: a real PostgreSQL (with pgvector) and a real Redis.

`DATABASE_URL` / `REDIS_URL` in the environment take precedence over the embedded servers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devinfra.stack import ServiceUrls, local_services


@pytest.fixture(scope="session")
def local_service_urls() -> Iterator[ServiceUrls]:
    # Not under pytest's tmp dir: pytest resets that tree to mode 0700 whenever another
    # session starts, which would lock out the unprivileged postgres user mid-run.
    data_dir = Path(tempfile.mkdtemp(prefix="mlapi-services-"))
    try:
        with local_services(data_dir) as urls:
            yield urls
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_url(local_service_urls: ServiceUrls) -> str:
    """DSN of a real PostgreSQL 18 with the vector extension created."""
    return local_service_urls.database_url


@pytest.fixture(scope="session")
def redis_url(local_service_urls: ServiceUrls) -> str:
    """URL of a real Redis-protocol server."""
    return local_service_urls.redis_url


@pytest.fixture(scope="session")
def migrated_pg_url(pg_url: str) -> str:
    """The session database with the shared schema applied by Django's migrations."""
    done = subprocess.run(
        [sys.executable, "-m", "backends.django_service.manage", "migrate", "--no-input"],
        env={**os.environ, "DATABASE_URL": pg_url},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return pg_url
