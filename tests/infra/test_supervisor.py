"""`make run`'s supervisor: a service that exits is started again, one that keeps dying is not."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import psutil

from devinfra.supervisor import Child, Supervisor

# appends a line per start; exits with 3 at its first start, then stays up
CRASH_ONCE = """
import pathlib, sys, time
log = pathlib.Path(sys.argv[1])
with log.open("a") as f:
    f.write("started\\n")
if len(log.read_text().splitlines()) == 1:
    sys.exit(3)
time.sleep(600)
"""


def _starts(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_a_child_that_exits_is_started_again(tmp_path: Path) -> None:
    log = tmp_path / "starts"
    supervisor = Supervisor(poll_s=0.05)
    supervisor.start(Child("svc", [sys.executable, "-c", CRASH_ONCE, str(log)], dict(os.environ)))
    result: list[int] = []
    watcher = threading.Thread(target=lambda: result.append(supervisor.watch()), daemon=True)
    watcher.start()
    try:
        deadline = time.monotonic() + 30
        while _starts(log) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _starts(log) == 2
        assert supervisor.children[0].exit_code() is None  # the second one runs
    finally:
        supervisor.stop()
        watcher.join(timeout=10)
    assert result == [0]


def test_a_child_that_keeps_dying_is_given_up(tmp_path: Path) -> None:
    log = tmp_path / "starts"
    command = [sys.executable, "-c", "import sys; open(sys.argv[1], 'a').write('x\\n')", str(log)]
    supervisor = Supervisor(max_restarts=2, window_s=600, poll_s=0.05)
    supervisor.start(Child("svc", command, dict(os.environ)))
    try:
        assert supervisor.watch() == 1
    finally:
        supervisor.stop()
    assert _starts(log) == 3  # the first start and two restarts


# a "main process" that leaves a worker behind when it dies (as a SIGKILLed granian does)
ORPHANING = """
import pathlib, subprocess, sys, time
log = pathlib.Path(sys.argv[1])
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
with log.open("a") as f:
    f.write(f"{worker.pid}\\n")
if len(log.read_text().splitlines()) == 1:
    sys.exit(3)
time.sleep(600)
"""


def _gone(pid: int, wait_s: float = 0.0) -> bool:
    """The process ended (or is a zombie), waiting up to ``wait_s`` for it (kills are async)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            ended = bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
        except psutil.NoSuchProcess:
            ended = True
        if ended or time.monotonic() > deadline:
            return ended
        time.sleep(0.05)


def test_the_workers_a_dead_child_left_are_reaped_before_its_restart(tmp_path: Path) -> None:
    log = tmp_path / "workers"
    supervisor = Supervisor(poll_s=0.05)
    supervisor.start(Child("svc", [sys.executable, "-c", ORPHANING, str(log)], dict(os.environ)))
    watcher = threading.Thread(target=supervisor.watch, daemon=True)
    watcher.start()
    try:
        deadline = time.monotonic() + 30
        while _starts(log) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        first_worker, second_worker = (int(line) for line in log.read_text().splitlines())
        assert _gone(first_worker, wait_s=10), "the dead child's worker still runs"
        assert not _gone(second_worker)
    finally:
        supervisor.stop()
        watcher.join(timeout=10)
    assert _gone(second_worker, wait_s=10)
