"""The console summary after a run: figures side by side, run-to-run spread, agreement."""

from __future__ import annotations

import statistics
from typing import TextIO

from bench.results import RunResult, rankings, rankings_agree, summarise

NOISY_OTHER_CORES = 0.3  # neighbours using this much of the 2 cores skew a point


def run_notes(result: RunResult) -> list[str]:
    """Caveats worth a line in the report: disturbed points, unavailable targets."""
    notes = []
    noisy = [p for p in result.points if p.other_cpu_cores >= NOISY_OTHER_CORES]
    if noisy:
        worst = max(noisy, key=lambda p: p.other_cpu_cores)
        notes.append(
            f"{len(noisy)} of {len(result.points)} points ran while other processes used "
            f">= {NOISY_OTHER_CORES} cores (worst {worst.other_cpu_cores:.2f}: {worst.backend} "
            f"{worst.route} {worst.scenario}, repeat {worst.repeat}); their figures are low."
        )
    for backend in result.backends:
        if not backend.available:
            notes.append(f"{backend.name} not benchmarked: {backend.reason}")
        gateway = backend.verification.get("gateway")
        if gateway is not None and not gateway.get("passed"):
            notes.append(f"gateway -> {backend.name} not benchmarked: {gateway.get('summary')}")
    return notes


def print_summary(result: RunResult, out: TextIO) -> None:
    summaries = summarise(result.points)
    print("", file=out)
    print(f"{'scenario':16}{'backend':10}{'route':9}{'req/s':>10}{'spread':>8}", end="", file=out)
    print(f"{'p50 ms':>9}{'p99 ms':>10}{'errors':>8}", file=out)
    for s in summaries:
        print(
            f"{s.scenario:16}{s.backend:10}{s.route:9}{s.rps:>10.1f}{s.spread_pct:>7.0f}%"
            f"{s.p50_ms:>9.1f}{s.p99_ms:>10.1f}{s.errors:>8}",
            file=out,
        )
    spreads = [s.spread_pct for s in summaries if len(s.rps_runs) > 1]
    if spreads:
        print(
            f"\nrun-to-run spread of req/s over {result.config.get('repeat')} repeats: "
            f"median {statistics.median(spreads):.0f}%, max {max(spreads):.0f}%",
            file=out,
        )
    ranked = {key: orders for key, orders in rankings(result.points).items() if len(orders[0]) > 1}
    if ranked and len(next(iter(ranked.values()))) > 1:
        agree = sum(rankings_agree(orders) for orders in ranked.values())
        print(f"rankings agree across repeats in {agree} of {len(ranked)} cells", file=out)
        for (route, scenario), orders in sorted(ranked.items()):
            if not rankings_agree(orders):
                print(f"  differs: {route} {scenario}: {orders}", file=out)
    for note in result.notes:
        print(f"note: {note}", file=out)
    print(f"total run time: {result.timings_s.get('total', 0):.0f} s", file=out)
