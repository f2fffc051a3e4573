"""Shadow mode's cost to the primary: the same gateway load with shadowing off and on.

Run: ``uv run python -m bench.shadow [--duration 5] [--connections 16] [--sample-rate 0.1]``.
On one fresh Postgres + Redis it starts both backends and two gateways routed to FastAPI,
one of them mirroring to Django (``ML_SERVICE_SHADOW=django``); verifies both answer.

In production the candidate runs on its own machine, so it gets its own core here: the
candidate (Django) is pinned to the last core, and everything the primary's latency
depends on (FastAPI, both gateways, Postgres, Redis, wrk and the open-loop generator) to
the others, in the off and the on runs alike. The shadow gateway's mirror worker
(gateway/shadow_worker.py: it sends the mirrors, compares the answers and writes the
result rows) is the candidate's traffic: it is moved to the candidate's core (it is
started by the gateway's lifespan), as it would run on a core of the gateway's host that
the primary's requests do not need (``--worker-core primary`` leaves it on the primary's
cores, to see what it costs there). Postgres is shared, but the work it does for the
candidate's connections (the candidate's shadow request-log rows) and the worker's (the
result rows) is the candidate's traffic too: in production it runs on the database's
host, not on the primary's cores; here each of those connections' server processes
(forked by the postmaster, on the primary's cores) is moved to the candidate's core
before each run (``--candidate-db-core primary`` leaves them, to see what they cost
there). Their CPU is reported apart (``postgres_candidate``).

Measured, in rounds of off, on (the machine's drift falls on both): closed-loop (wrk,
``--connections``) and open-loop at a fixed offered rate, ``--load`` (default 0.5) of the
primary's closed-loop throughput measured first in the same run (bench/open_loop.py:
latency counted from each request's due time). The mix: a cached embedding and an
uncached complexity calculation, 3:1. Prints the primary's p50/p99 and errors per side
and the shadow outcomes (``/metrics``). Writes bench/reports/shadow-<time>.{md,json}.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil
import psycopg

from bench import open_loop
from bench.resources import tree_cpu_s
from bench.targets import BACKEND_MODULES
from bench.wrk import WrkOptions, WrkResult
from bench.wrk import run as run_wrk
from devinfra.processes import running_service
from devinfra.stack import local_services

REPORTS = Path(__file__).resolve().parent / "reports"
EMBED = ("POST", "/api/v1/embeddings/generate", '{"text": "Shadow traffic costs nothing."}')
ADJUST = (
    "POST",
    "/api/v1/complexity/calculate-adjustment",
    '{"pre_level": 2, "actual_level": 3, "estimated_hours": 3.0, "actual_hours": 4.5}',
)
MIX = [("3", *EMBED), ("1", *ADJUST)]
OPEN_MIX: list[open_loop.Request] = [(3, *EMBED), (1, *ADJUST)]
OUTCOMES = {"match": "matched", "differs": "differing", "error": "errors", "skipped": "skipped",
            "dropped_inflight": "dropped (in-flight bound)",
            "dropped_queue": "dropped (comparison queue full)"}  # fmt: skip


@contextlib.contextmanager
def _pinned(cores: set[int]) -> Any:
    """Processes started inside inherit these cores (this process is moved there meanwhile)."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cores)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _verify(base_url: str) -> None:
    for method, path, body in (EMBED, ADJUST):
        for _ in range(2):
            response = httpx.request(
                method, base_url + path, content=body,
                headers={"Content-Type": "application/json"}, timeout=60,
            )  # fmt: skip
            if response.status_code != 200:
                raise SystemExit(f"verification failed: {path} at {base_url}: {response.text}")


def _shadow_counters(base_url: str) -> dict[str, float]:
    totals: dict[str, float] = {}
    for line in httpx.get(base_url + "/metrics", timeout=10).text.splitlines():
        if line.startswith("gateway_shadow_requests_total{"):
            outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
            totals[outcome] = totals.get(outcome, 0) + float(line.rsplit(" ", 1)[1])
    return totals


def _listener_pid(url: str) -> int | None:
    """The process listening on a local service URL's port (the Postgres postmaster, whose
    children are the connections, or Redis); None when it cannot be seen."""
    port = urlsplit(url).port
    with contextlib.suppress(psutil.Error):
        for conn in psutil.net_connections("tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
                return int(conn.pid)
    return None


def _mirror_worker(gateway_pid: int) -> psutil.Process:
    """The shadow gateway's mirror worker process (started before the gateway listens)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for child in psutil.Process(gateway_pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if "gateway.shadow_worker" in " ".join(child.cmdline()):
                    return child
        time.sleep(0.1)
    raise SystemExit("the shadow gateway started no mirror worker")


def _candidate_db_backends(database_url: str, roots: list[int]) -> list[psutil.Process]:
    """The Postgres server processes of the connections opened by these process trees
    (the candidate's, the mirror worker's): matched by the client's port."""
    owners = set()
    for root in roots:
        with contextlib.suppress(psutil.Error):
            owners |= {p.pid for p in [psutil.Process(root), *psutil.Process(root).children(True)]}
    ports = {
        conn.laddr.port
        for conn in psutil.net_connections("tcp")
        if conn.pid in owners and conn.laddr and conn.raddr
    }
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid, client_port FROM pg_stat_activity WHERE client_port IS NOT NULL"
        ).fetchall()
    found = []
    for pid, port in rows:
        if port in ports:
            with contextlib.suppress(psutil.Error):
                found.append(psutil.Process(pid))
    return found


def _own_cpu_s(pid: int) -> float:
    """CPU seconds of one process (not its children)."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _generator_cpu_s() -> float:
    """CPU seconds of this process (the open-loop generator) and its exited children (wrk)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _row(side: str, result: WrkResult) -> dict[str, Any]:
    return {
        "shadow": side,
        "loop": "closed",
        "rps": round(result.rps, 1),
        "p50_ms": round(result.p50_ms, 3),
        "p99_ms": round(result.p99_ms, 3),
        "requests": result.requests,
        "errors": result.errors,
        "timeouts": result.timeouts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sample-rate", default="0.1")
    parser.add_argument(
        "--worker-core", choices=("candidate", "primary"), default="candidate",
        help="where the shadow gateway's mirror worker runs",
    )  # fmt: skip
    parser.add_argument(
        "--candidate-db-core", choices=("candidate", "primary"), default="candidate",
        help="where the Postgres processes of the candidate's and the worker's connections run",
    )  # fmt: skip
    parser.add_argument(
        "--load", type=float, default=0.5, help="open-loop rate: share of the closed-loop rps"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk, or `make setup`)")
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        raise SystemExit("needs 2 cores: one for the candidate, one for the primary")
    candidate_cores, primary_cores = {cores[-1]}, set(cores[:-1])
    tmp = Path(tempfile.mkdtemp(prefix="bench-shadow-"))
    rows: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        stack.enter_context(_pinned(primary_cores))  # this process, wrk, the generator
        urls = stack.enter_context(local_services(tmp / "services"))
        env = {"DATABASE_URL": urls.database_url, "REDIS_URL": urls.redis_url,
               "ML_SERVICE_GATEWAY_SECRET": "bench-secret"}  # fmt: skip
        subprocess.run(
            [sys.executable, "-m", "backends.django_service.manage", "migrate", "--no-input"],
            env={**os.environ, **env}, check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        backends = {}
        for name, module in BACKEND_MODULES.items():
            with _pinned(candidate_cores if name == "django" else primary_cores):
                backends[name] = stack.enter_context(
                    running_service(module, env, tmp, ready_timeout_s=180)
                )
        gateway_env = {
            **env,
            "ML_SERVICE_BACKEND": "fastapi",
            "ML_BACKENDS": json.dumps({n: s.base_url for n, s in backends.items()}),
            "GATEWAY_API_KEYS": "",
            "GATEWAY_RATE_LIMIT_PER_MINUTE": "0",
        }
        gateways = {
            "off": stack.enter_context(running_service("gateway", gateway_env, tmp)),
            "on": stack.enter_context(
                running_service(
                    "gateway",
                    {
                        **gateway_env,
                        "ML_SERVICE_SHADOW": "django",
                        "GATEWAY_SHADOW_SAMPLE_RATE": args.sample_rate,
                    },
                    tmp,
                )
            ),
        }
        for gateway in gateways.values():
            _verify(gateway.base_url)
        lua = ["shadow"] + [part for entry in MIX for part in entry]
        options = WrkOptions(connections=args.connections, duration_s=args.duration)
        for gateway in gateways.values():  # warm-up: pools, caches, lazy imports
            run_wrk(gateway.base_url, WrkOptions(args.connections, 1), lua)
        worker = _mirror_worker(gateways["on"].process.pid)
        # outcomes of the verification and warm-up (the worker's first mirrors; it was
        # started with the gateway, so none should wait for it)
        time.sleep(1)
        warm_up = _shadow_counters(gateways["on"].base_url)
        worker_cores = candidate_cores if args.worker_core == "candidate" else primary_cores
        worker.cpu_affinity(sorted(worker_cores))
        # the rows' CPU that is not spent on the primary's cores
        not_primary = ("django",) + (("gateway_worker",) if worker_cores == candidate_cores else ())
        capacity = run_wrk(gateways["off"].base_url, options, lua).rps
        rate = args.load * capacity
        print(f"primary capacity {capacity:.0f} req/s closed-loop; open loop at {rate:.0f}")
        pids = {name: service.process.pid for name, service in backends.items()}
        # the stores, on the primary's cores too: the candidate's log rows and the shadow
        # results are written there
        pids |= {
            name: pid
            for name, url in (("postgres", urls.database_url), ("redis", urls.redis_url))
            if (pid := _listener_pid(url)) is not None
        }

        candidate_db_cores = (
            candidate_cores if args.candidate_db_core == "candidate" else primary_cores
        )

        def measured(side: str, run: Callable[[], dict[str, Any]]) -> None:
            """One run, with the CPU each process tree spent on it (robust to other load)."""
            gateway_pid = gateways[side].process.pid
            # the candidate's and the worker's connections (a pool may have opened new ones)
            candidate_db = _candidate_db_backends(
                urls.database_url, [backends["django"].process.pid, worker.pid]
            )
            for backend in candidate_db:
                with contextlib.suppress(psutil.Error):
                    backend.cpu_affinity(sorted(candidate_db_cores))
            candidate_db_before = {b.pid: _own_cpu_s(b.pid) for b in candidate_db}
            before = {name: tree_cpu_s(pid) for name, pid in pids.items()}
            gateway_before = _own_cpu_s(gateway_pid), tree_cpu_s(gateway_pid)
            generator_before, started = _generator_cpu_s(), time.perf_counter()
            row = run()
            wall_s = time.perf_counter() - started
            generator_s = _generator_cpu_s() - generator_before
            time.sleep(1)  # the run's last mirrors are answered and compared
            requests = row.get("requests") or row["sent"]
            # wrk (a child, counted once it exits) or the open-loop generator (this process)
            row["load_generator_cpu_ms_per_request"] = round(1000 * generator_s / requests, 4)
            own = _own_cpu_s(gateway_pid) - gateway_before[0]
            children = tree_cpu_s(gateway_pid) - gateway_before[1] - own  # the worker
            row["gateway_cpu_ms_per_request"] = round(1000 * own / requests, 4)
            row["gateway_worker_cpu_ms_per_request"] = round(1000 * children / requests, 4)
            for name, pid in pids.items():
                spent = tree_cpu_s(pid) - before[name]
                row[f"{name}_cpu_ms_per_request"] = round(1000 * spent / requests, 4)
            spent = 0.0
            for pid, cpu_s in candidate_db_before.items():
                with contextlib.suppress(psutil.Error):
                    spent += _own_cpu_s(pid) - cpu_s
            # part of postgres' figure, on the candidate's core unless --candidate-db-core primary
            row["postgres_candidate_cpu_ms_per_request"] = round(1000 * spent / requests, 4)
            row["postgres_candidate_connections"] = len(candidate_db)
            # everything but the candidate shares the primary's cores: the sum is what
            # shadowing adds there (p50 follows it when those cores are saturated)
            row["primary_cores_cpu_ms_per_request"] = round(
                sum(v for k, v in row.items() if k.endswith("_cpu_ms_per_request")
                    and not k.startswith(not_primary))
                - (row["postgres_candidate_cpu_ms_per_request"]
                   if candidate_db_cores == candidate_cores else 0),
                4,
            )  # fmt: skip
            # how busy our processes kept the primary's cores: near 1, p50 is mostly
            # queueing there and grows steeply with any CPU added (shadowing's included)
            row["primary_cores_busy"] = round(
                row["primary_cores_cpu_ms_per_request"] * requests / 1000
                / wall_s / len(primary_cores),
                3,
            )  # fmt: skip
            row["loadavg_1m"] = round(os.getloadavg()[0], 2)
            rows.append(row)
            print(json.dumps(row), flush=True)

        def closed(side: str) -> dict[str, Any]:
            return _row(side, run_wrk(gateways[side].base_url, options, lua))

        def opened(side: str) -> dict[str, Any]:
            result = open_loop.run(gateways[side].base_url, OPEN_MIX, rate, args.duration)
            return {"shadow": side, "loop": "open", **result.as_dict()}

        for _ in range(args.rounds):
            for run in (closed, opened):
                for side in gateways:
                    measured(side, functools.partial(run, side))
        time.sleep(2)  # the last mirrors are answered and compared
        at_end = _shadow_counters(gateways["on"].base_url)
        counters = {  # the measured rounds'
            OUTCOMES.get(outcome, outcome): count - warm_up.get(outcome, 0)
            for outcome, count in at_end.items()
            if count - warm_up.get(outcome, 0)
        }
        warm_up_counters = {OUTCOMES.get(outcome, outcome): n for outcome, n in warm_up.items()}
    summary: dict[str, dict[str, Any]] = {}
    for loop in ("closed", "open"):
        for side in gateways:
            mine = [r for r in rows if r["shadow"] == side and r["loop"] == loop]
            summary[f"{loop}/{side}"] = {
                "p50_ms": round(sorted(r["p50_ms"] for r in mine)[len(mine) // 2], 3),
                "p99_ms": round(sorted(r["p99_ms"] for r in mine)[len(mine) // 2], 3),
                "rps": round(
                    sum(r.get("rps", r.get("achieved_rps", 0)) for r in mine) / len(mine), 1
                ),
                "errors": sum(r["errors"] for r in mine),
                **{
                    key: round(sorted(r[key] for r in mine)[len(mine) // 2], 4)
                    for key in mine[0]
                    if key.endswith("_cpu_ms_per_request") or key == "primary_cores_busy"
                },
            }
    ratios = {
        loop: round(summary[f"{loop}/on"]["p50_ms"] / summary[f"{loop}/off"]["p50_ms"], 3)
        for loop in ("closed", "open")
    }
    meta = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "duration_s": args.duration,
        "connections": args.connections,
        "rounds": args.rounds,
        "sample_rate": args.sample_rate,
        "cores": f"candidate {sorted(candidate_cores)}; primary, gateways, Postgres, Redis, "
        f"load generators {sorted(primary_cores)}; shadow gateway's mirror worker "
        f"{sorted(worker_cores)} ({args.worker_core}'s); Postgres processes of the candidate's"
        f" and the worker's connections {sorted(candidate_db_cores)}"
        f" ({args.candidate_db_core}'s)",
        "primary_capacity_rps": round(capacity, 1),
        "open_loop_rps": round(rate, 1),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    report = {"meta": meta, "runs": rows, "summary": summary, "p50_ratio_on_off": ratios,
              "shadow_counters": counters, "shadow_counters_warm_up": warm_up_counters}  # fmt: skip
    lines = [
        "# Shadow mode: primary latency with shadowing off and on",
        "",
        *(f"- {k}: {v}" for k, v in meta.items()),
        "",
        "| loop | shadow | rps | p50 ms | p99 ms | errors | primary cores busy | load 1m |",
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| {r['loop']} | {r['shadow']} | {r.get('rps', r.get('achieved_rps'))} |"
            f" {r['p50_ms']} | {r['p99_ms']} | {r['errors']} | {r['primary_cores_busy']} |"
            f" {r['loadavg_1m']} |"
            for r in rows
        ),
        "",
        *(
            f"{loop}-loop p50 on/off (median of rounds): {summary[f'{loop}/on']['p50_ms']} / "
            f"{summary[f'{loop}/off']['p50_ms']} ms = {ratios[loop]:.3f} (target <= 1.05); "
            f"errors off {summary[f'{loop}/off']['errors']}, on {summary[f'{loop}/on']['errors']}"
            for loop in ("closed", "open")
        ),
        f"shadow outcomes in the measured rounds: {json.dumps(counters)}",
        f"shadow outcomes in verification and warm-up: {json.dumps(warm_up_counters)}",
        "",
        "CPU ms per primary request (median of rounds; the gateway's process and its mirror"
        " worker apart; django is the candidate, on its own core; load_generator is wrk or the"
        " open-loop generator; postgres_candidate is the part of postgres spent for the"
        " candidate's and the worker's connections (on the candidate's core unless"
        " --candidate-db-core primary); primary_cores is the sum of what runs on the primary's"
        " cores"
        " (the worker only when --worker-core primary); primary_cores_busy is the share of"
        " those cores it kept busy):",
        "",
        *(
            f"- {key}: {json.dumps({k: v for k, v in row.items() if 'cpu' in k or 'busy' in k})}"
            for key, row in summary.items()
        ),
    ]
    REPORTS.mkdir(exist_ok=True)
    stem = REPORTS / f"shadow-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {stem}.md and .json")


if __name__ == "__main__":
    main()
