"""Drive wrk (a separate process, so the load generator never shares the server's GIL).

Figures come from the ``@@bench`` JSON line that ``lua/profile.lua`` prints in ``done()``
(exact p95/p99); the human summary wrk prints is parsed too, as a fallback and a cross-check.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

LUA_SCRIPT = Path(__file__).with_name("lua") / "profile.lua"
# The same profile, also counting answers per status code (the overload split).
STATUS_SCRIPT = LUA_SCRIPT.with_name("statuses.lua")
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


class WrkError(RuntimeError):
    """wrk is missing, failed, or printed nothing we can read."""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p95_ms: float | None
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int
    timeouts: int = 0  # requests wrk gave up on (part of socket_errors)
    # answers per status code, only when run with ``count_statuses``
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors


@dataclass(frozen=True)
class WrkOptions:
    connections: int
    duration_s: float
    threads: int = 2
    timeout_s: float = 10.0
    headers: tuple[str, ...] = ()


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise WrkError("wrk not found on PATH: `apt-get install wrk` (make setup installs it)")
    return found


def command(
    base_url: str, options: WrkOptions, lua_args: list[str], *, count_statuses: bool = False
) -> list[str]:
    """The wrk command line: -t threads -c connections -d duration, Lua script, its args."""
    cmd = [
        wrk_binary(),
        f"-t{options.threads}",
        f"-c{max(options.connections, options.threads)}",
        f"-d{max(1, round(options.duration_s))}s",
        f"--timeout={max(1, round(options.timeout_s))}s",
        "--latency",
        "-s",
        str(STATUS_SCRIPT if count_statuses else LUA_SCRIPT),
    ]
    for header in options.headers:
        cmd += ["-H", header]
    return [*cmd, base_url, "--", *lua_args]


def run(
    base_url: str, options: WrkOptions, lua_args: list[str], *, count_statuses: bool = False
) -> WrkResult:
    """Run wrk once against ``base_url`` and return its parsed figures."""
    cmd = command(base_url, options, lua_args, count_statuses=count_statuses)
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=options.duration_s + options.timeout_s + 60
    )
    if done.returncode != 0:
        raise WrkError(f"wrk exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return parse_output(done.stdout)


def parse_output(text: str) -> WrkResult:
    """Figures from wrk's stdout: the ``@@bench`` JSON line if present, else the summary."""
    summary = _parse_summary(text)
    line = next((ln for ln in text.splitlines() if ln.startswith("@@bench ")), None)
    if line is None:
        if summary is None:
            raise WrkError(f"unreadable wrk output: {text[-500:]!r}")
        return summary
    data = json.loads(line.removeprefix("@@bench "))
    counted = next((ln for ln in text.splitlines() if ln.startswith("@@statuses ")), None)
    statuses = json.loads(counted.removeprefix("@@statuses ")) if counted else {}
    duration_s = data["duration_us"] / 1e6
    socket_errors = sum(data[key] for key in ("connect", "read", "write", "timeout"))
    return WrkResult(
        requests=int(data["requests"]),
        duration_s=duration_s,
        # wrk's own Requests/sec counts completed responses over the run's wall time.
        rps=summary.rps if summary else data["requests"] / max(duration_s, 1e-9),
        p50_ms=data["p50_us"] / 1000,
        p95_ms=data["p95_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        non_2xx=int(data["status"]),
        socket_errors=int(socket_errors),
        timeouts=int(data["timeout"]),
        statuses={int(code): int(n) for code, n in statuses.items()},
    )


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def _parse_summary(text: str) -> WrkResult | None:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    if rps is None or total is None:
        return None
    pct = {
        int(m[1]): _ms(m[2], m[3])
        for m in re.finditer(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    }
    # "Latency   avg   stdev   max   +/- stdev" (the Thread Stats line)
    latency_max = re.search(
        r"^\s+Latency\s+[\d.]+(?:us|ms|s|m)\s+[\d.]+(?:us|ms|s|m)\s+([\d.]+)(us|ms|s|m)", text, re.M
    )
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return WrkResult(
        requests=int(total[1]),
        duration_s=_ms(total[2], total[3]) / 1000,
        rps=float(rps[1]),
        p50_ms=pct.get(50, float("nan")),
        p95_ms=None,  # wrk's summary has no p95: only the Lua done() hook gives it
        p99_ms=pct.get(99, float("nan")),
        max_ms=_ms(latency_max[1], latency_max[2]) if latency_max else float("nan"),
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
        timeouts=int(sockets[4]) if sockets else 0,
    )
