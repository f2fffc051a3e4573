"""Keep `make run`'s services running: a child process that exits is started again.

One crashed backend used to end `make run` (and with it the gateway, Redis and Postgres).
A child that keeps dying is given up after ``max_restarts`` starts within ``window_s``
(a service that cannot start must not loop forever), and then everything stops.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass
class Child:
    """One supervised service: how to start it, and its current process."""

    name: str
    command: Sequence[str]
    env: Mapping[str, str]
    process: subprocess.Popen[bytes] | None = None
    starts: deque[float] = field(default_factory=deque)

    def start(self) -> None:
        # its own process group: a server's workers outlive a killed main process (a
        # granian worker kept serving on the port beside its replacement) unless reaped
        self.process = subprocess.Popen(
            list(self.command), env=dict(self.env), start_new_session=True
        )
        self.starts.append(time.monotonic())

    def reap(self) -> None:
        """SIGKILL whatever is left of the process's group (orphaned workers)."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def exit_code(self) -> int | None:
        """The exit code when the process has ended, else None."""
        return None if self.process is None else self.process.poll()


class Supervisor:
    """Starts children, restarts the ones that exit, stops them all in reverse order."""

    def __init__(self, max_restarts: int = 5, window_s: float = 60.0, poll_s: float = 0.5):
        self.max_restarts = max_restarts
        self.window_s = window_s
        self.poll_s = poll_s
        self.children: list[Child] = []
        self._stopping = threading.Event()

    def start(self, child: Child) -> None:
        self.children.append(child)
        child.start()

    def watch(self) -> int:
        """Block, restarting children that exit; 0 once ``stop()`` is called, 1 on giving up."""
        while not self._stopping.wait(self.poll_s):
            for child in self.children:
                code = child.exit_code()
                if code is None:
                    continue
                now = time.monotonic()
                while child.starts and now - child.starts[0] > self.window_s:
                    child.starts.popleft()
                if len(child.starts) > self.max_restarts:
                    print(f"{child.name} exited with code {code} {len(child.starts)} times in"
                          f" {self.window_s:g} s; giving up")  # fmt: skip
                    return 1
                print(f"{child.name} exited with code {code}; restarting it")
                child.reap()
                child.start()
        return 0

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop watching, then terminate every child (newest first) and wait for them."""
        self._stopping.set()
        children = [c for c in reversed(self.children) if c.process is not None]
        for child in children:
            if child.exit_code() is None:
                child.process.terminate()  # type: ignore[union-attr]
        for child in children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=timeout_s)  # type: ignore[union-attr]
            child.reap()
