"""Run a service as a real child process on a free port and wait until it is ready."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from devinfra.ports import free_port


@dataclass(frozen=True)
class RunningService:
    base_url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def wait_until_ready(
    base_url: str, process: subprocess.Popen[bytes], timeout_s: float, path: str = "/ready"
) -> None:
    """Poll ``path`` until it answers 200; fail early if the process dies."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"service exited with code {process.returncode} before ready")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(base_url + path, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{base_url}{path} not ready after {timeout_s}s")


@contextlib.contextmanager
def running_service(
    module: str,
    env: Mapping[str, str],
    log_dir: Path,
    *,
    port: int | None = None,
    ready_timeout_s: float = 120,
) -> Iterator[RunningService]:
    """Start ``python -m module`` with ``env`` (+PORT), yield once /ready is 200, then stop it."""
    port = port or free_port()
    log_path = log_dir / f"{module.replace('.', '_')}-{port}.log"
    child_env = {**os.environ, **env, "PORT": str(port)}
    with log_path.open("wb") as log_file:
        # its own process group: servers fork workers (granian, gunicorn), and stopping or
        # killing the service must reach all of them, as stopping a container would
        process = subprocess.Popen(
            [sys.executable, "-m", module],
            env=child_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    service = RunningService(f"http://127.0.0.1:{port}", port, process, log_path)
    try:
        wait_until_ready(service.base_url, process, ready_timeout_s)
        yield service
    except BaseException:
        sys.stderr.write(f"--- {module} log ---\n{service.log()[-5000:]}\n")
        raise
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    """SIGTERM to the service (graceful: logs are flushed), SIGKILL to its group if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            kill_group(process)
            process.wait(timeout=5)
    kill_group(process)  # workers orphaned by a dead main process


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL every process of the service's group (no graceful shutdown)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
