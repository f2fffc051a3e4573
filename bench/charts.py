"""PNG charts (matplotlib, headless): throughput and latency per backend, route and scenario."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

from bench.results import Summary, find
from bench.scenarios import SCENARIOS

TITLES = {s.name: s.title for s in SCENARIOS}


def _series(summaries: list[Summary]) -> tuple[list[str], list[tuple[str, str]]]:
    """Scenarios measured (catalogue order) and (backend, route) pairs measured."""
    scenarios = [name for name in TITLES if any(s.scenario == name for s in summaries)]
    pairs: list[tuple[str, str]] = []
    for s in summaries:
        if (s.backend, s.route) not in pairs:
            pairs.append((s.backend, s.route))
    backends = list(dict.fromkeys(p[0] for p in pairs))
    return scenarios, sorted(pairs, key=lambda p: (backends.index(p[0]), p[1]))


def _bars(
    path: Path,
    summaries: list[Summary],
    panels: Sequence[tuple[str, str]],
    title: str,
) -> None:
    """One panel per (attribute, y label): grouped bars, log scale (health vs model: 100x)."""
    import matplotlib

    matplotlib.use("Agg")  # no display here; must precede pyplot
    import matplotlib.pyplot as plt

    scenarios, pairs = _series(summaries)
    backends = list(dict.fromkeys(backend for backend, _ in pairs))
    width = 0.8 / max(len(pairs), 1)
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 4.2 * len(panels)), squeeze=False)
    for ax, (attribute, label) in zip(axes[:, 0], panels, strict=True):
        for i, (backend, route) in enumerate(pairs):
            values = []
            for scenario in scenarios:
                cell = find(summaries, backend, route, scenario)
                value = getattr(cell, attribute) if cell else None
                values.append(value if value else 0.0)
            xs = [x + (i - (len(pairs) - 1) / 2) * width for x in range(len(scenarios))]
            via = route == "gateway"
            bars = ax.bar(
                xs,
                values,
                width,
                label=f"{backend} ({route})",
                color=f"C{backends.index(backend)}",
                alpha=0.55 if via else 1.0,
                hatch="//" if via else None,
                edgecolor="black",
                linewidth=0.4,
            )
            ax.bar_label(bars, labels=[_short(v) for v in values], fontsize=7, rotation=90)
        ax.set_yscale("log")
        top = max((getattr(s, attribute) or 0 for s in summaries), default=1.0)
        ax.set_ylim(top=max(top, 1.0) * 4)  # room for the value labels
        ax.set_ylabel(label)
        labels = [textwrap.fill(TITLES[s], 22, break_long_words=False) for s in scenarios]
        ax.set_xticks(range(len(scenarios)), labels, fontsize=8)
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=8, ncols=len(pairs), loc="upper right")
    axes[0, 0].set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _short(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def write_charts(points_summaries: list[Summary], out_dir: Path, stem: str) -> list[str]:
    """Write the throughput and latency PNGs; return their file names (relative to out_dir)."""
    if not points_summaries:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    throughput, latency = f"{stem}-throughput.png", f"{stem}-latency.png"
    _bars(
        out_dir / throughput,
        points_summaries,
        [("rps", "requests/s (log)")],
        "Throughput per scenario (median of repeats; hatched = through the gateway)",
    )
    _bars(
        out_dir / latency,
        points_summaries,
        [("p50_ms", "p50 latency ms (log)"), ("p99_ms", "p99 latency ms (log)")],
        "Latency per scenario (median of repeats; hatched = through the gateway)",
    )
    return [throughput, latency]
