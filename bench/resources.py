"""Server resources: RSS of a process tree (sampled during a run), idleness, cold start."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil

from devinfra.ports import free_port
from devinfra.processes import stop_process

MB = 1024 * 1024


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its children (gunicorn workers, ...), in MB."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += proc.memory_info().rss
    return total / MB


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process tree."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


@dataclass
class RssSampler:
    """Samples the RSS of named process trees every ``interval_s`` in a background thread."""

    pids: Mapping[str, int]
    interval_s: float = 0.25
    samples: dict[str, list[float]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self.samples = {name: [] for name in self.pids}
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for name, pid in self.pids.items():
                self.samples[name].append(tree_rss_mb(pid))
            self._stop.wait(self.interval_s)

    def median(self, name: str) -> float:
        values = self.samples.get(name) or [0.0]
        return statistics.median(values)

    def peak(self, name: str) -> float:
        return max(self.samples.get(name) or [0.0])


def wait_idle(pids: list[int], *, max_wait_s: float = 60.0, busy_share: float = 0.05) -> float:
    """Wait until the trees use < ``busy_share`` of one core for 0.3 s; return seconds waited.

    After wrk stops, a server may still be working through queued requests (a sync worker's
    accept backlog): the next point must not start on a busy server.
    """
    start = time.monotonic()
    window = 0.3
    while time.monotonic() - start < max_wait_s:
        before = sum(tree_cpu_s(pid) for pid in pids)
        time.sleep(window)
        used = sum(tree_cpu_s(pid) for pid in pids) - before
        if used < busy_share * window:
            break
    return time.monotonic() - start


def _time_to_ready(
    module: str, env: Mapping[str, str], log_path: Path, timeout_s: float, ready_path: str
) -> float:
    port = free_port()
    child_env = {**os.environ, **env, "PORT": str(port)}
    url = f"http://127.0.0.1:{port}{ready_path}"
    with log_path.open("ab") as log, httpx.Client(timeout=1.0) as client:
        start = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", module],
            env=child_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stop_process then reaches forked workers too
        )
        try:
            while time.perf_counter() - start < timeout_s:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"{module} exited with {process.returncode} (see {log_path})"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url).status_code == 200:
                        return time.perf_counter() - start
                time.sleep(0.02)
            raise TimeoutError(f"{module} not ready after {timeout_s}s (see {log_path})")
        finally:
            stop_process(process)


def cold_starts(
    module: str,
    env: Mapping[str, str],
    log_dir: Path,
    *,
    count: int,
    timeout_s: float = 120.0,
    ready_path: str = "/ready",
) -> list[float]:
    """Seconds from process spawn to the first 200 on /ready, ``count`` times."""
    log_path = log_dir / f"coldstart-{module.replace('.', '_')}.log"
    return [_time_to_ready(module, env, log_path, timeout_s, ready_path) for _ in range(count)]


def image_size(image: str = "mlapi:latest") -> str:
    """Size of the compose image, or why it cannot be had here."""
    if shutil.which("docker") is None:
        return (
            "n/a: no Docker engine on this machine (compose/Dockerfile builds one image, "
            f"{image}, for every service)"
        )
    done = subprocess.run(
        ["docker", "image", "inspect", image, "--format", "{{.Size}}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        if "daemon" in done.stderr or "connect" in done.stderr.lower():
            return "n/a: the docker CLI is here but no Docker engine answers"
        return f"n/a: {image} not built (`docker compose -f compose/docker-compose.yml build`)"
    return f"{int(done.stdout.strip()) / MB:.0f} MB ({image})"


def listening_pids(urls: list[str]) -> list[int]:
    """Pids of the local processes listening on these URLs' ports (Postgres, Redis)."""
    ports = {urlsplit(url).port for url in urls} - {None}
    with contextlib.suppress(psutil.AccessDenied):
        return sorted(
            {
                conn.pid
                for conn in psutil.net_connections(kind="tcp")
                if conn.status == psutil.CONN_LISTEN and conn.laddr.port in ports and conn.pid
            }
        )
    return []


def _busy_cpu_s() -> float:
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def _own_and_children_cpu_s() -> float:
    """This process plus its waited-for children (wrk runs end inside the window)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass
class CpuMeter:
    """CPU cores used during a block by the servers, by Postgres + Redis, and by anyone else."""

    server_pids: list[int]
    infra_pids: list[int] = field(default_factory=list)
    server_cores: float = 0.0
    infra_cores: float = 0.0
    other_cores: float = 0.0
    _start: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0)

    def _now(self) -> tuple[float, float, float, float, float]:
        return (
            time.monotonic(),
            _busy_cpu_s(),
            sum(tree_cpu_s(pid) for pid in self.server_pids),
            sum(tree_cpu_s(pid) for pid in self.infra_pids),
            _own_and_children_cpu_s(),
        )

    def __enter__(self) -> CpuMeter:
        self._start = self._now()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._now()
        wall, busy, servers, infra, ours = (b - a for a, b in zip(self._start, end, strict=True))
        wall = max(wall, 1e-9)
        self.server_cores = servers / wall
        self.infra_cores = infra / wall
        self.other_cores = max(0.0, busy - servers - infra - ours) / wall
