"""`python -m bench` (what `make bench` runs): every backend, direct and via the gateway.

Each target passes a quick contract check before it is loaded; wrk (a separate process)
generates the load; the report goes to bench/reports/<date>-<host>.md/.json/.png.
"""

from __future__ import annotations

import argparse
import datetime as dt
import socket
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from bench import charts, report
from bench.config import BenchConfig, quick
from bench.results import summarise
from bench.runner import run
from bench.scenarios import scenario_names
from bench.summary import print_summary
from bench.targets import TargetUnavailable
from bench.wrk import WrkError


def _names(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def build_parser() -> argparse.ArgumentParser:
    d = BenchConfig()
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--backends", type=_names, default=d.backends, help="default: %(default)s")
    p.add_argument(
        "--scenarios", type=_names, default=d.scenarios, help=f"of {','.join(scenario_names())}"
    )
    p.add_argument("--routes", type=_names, default=d.routes, help="direct,gateway (default)")
    p.add_argument("--connections", "-c", type=int, help=f"wrk -c (default {d.connections})")
    p.add_argument(
        "--model-connections",
        type=int,
        help=f"wrk -c for scenarios that call the model (default {d.model_connections})",
    )
    p.add_argument("--threads", "-t", type=int, default=d.threads, help="wrk -t (default 2)")
    p.add_argument("--duration", type=float, help=f"seconds per point (default {d.duration_s})")
    p.add_argument("--warmup", type=float, help=f"seconds before each (default {d.warmup_s})")
    p.add_argument("--timeout", type=float, default=d.timeout_s, help="wrk --timeout seconds")
    p.add_argument("--repeat", type=int, help=f"runs of every point (default {d.repeat})")
    p.add_argument("--cold-starts", type=int, help=f"starts per service (default {d.cold_starts})")
    p.add_argument("--rag-documents", type=int, help=f"corpus size (default {d.rag_documents})")
    p.add_argument("--verify-phases", default=d.verify_phases, help="contract check --phases")
    p.add_argument("--out", type=Path, default=d.out_dir, help="report directory")
    p.add_argument("--data-dir", type=Path, help="keep Postgres/Redis data here (reuse index)")
    p.add_argument("--no-charts", action="store_true")
    p.add_argument("--quick", action="store_true", help="2-minute smoke run")
    return p


def config_from(args: argparse.Namespace) -> BenchConfig:
    cfg = BenchConfig(
        backends=args.backends,
        scenarios=args.scenarios,
        routes=args.routes,
        threads=args.threads,
        timeout_s=args.timeout,
        verify_phases=args.verify_phases,
        out_dir=args.out,
        data_dir=args.data_dir,
        charts=not args.no_charts,
    )
    if args.quick:
        cfg = quick(cfg)
    overrides = {
        "connections": args.connections,
        "model_connections": args.model_connections,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "repeat": args.repeat,
        "cold_starts": args.cold_starts,
        "rag_documents": args.rag_documents,
    }
    return replace(cfg, **{k: v for k, v in overrides.items() if v is not None})


def report_stem(out_dir: Path) -> str:
    """<date>-<host>, with -2, -3 ... when that report exists already (runs are compared)."""
    base = f"{dt.date.today().isoformat()}-{socket.gethostname()}"
    stem, n = base, 1
    while (out_dir / f"{stem}.md").exists():
        n += 1
        stem = f"{base}-{n}"
    return stem


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from(args)
    try:
        result = run(cfg)
    except (TargetUnavailable, WrkError) as exc:  # nothing can be measured at all
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    stem = report_stem(cfg.out_dir)
    pngs = charts.write_charts(summarise(result.points), cfg.out_dir, stem) if cfg.charts else []
    path = report.write(result, cfg.out_dir, stem, pngs)
    print_summary(result, sys.stdout)
    print(f"report: {path} (+ .json{', ' + ', '.join(pngs) if pngs else ''})")
    measured = {p.backend for p in result.points}
    return 0 if measured else 1


if __name__ == "__main__":
    sys.exit(main())
