"""What a backend's /metrics says about its batches: the mean batch size over one point.

Each gunicorn worker answers /metrics for itself (its ``backend_process_id`` says which),
so a snapshot scrapes a few times and keeps one reading per process; the mean over a point
is the change in items over the change in batches, summed over the processes seen both
before and after.
"""

from __future__ import annotations

import re

import httpx

# process id -> (batches, items) run so far, over every model
Snapshot = dict[int, tuple[float, float]]
_SAMPLE = re.compile(r"^(inference_batch_size_count|inference_batch_size_sum|backend_process_id)"
                     r"(?:\{[^}]*\})? (\S+)$", re.MULTILINE)  # fmt: skip


def parse(text: str) -> tuple[int, float, float] | None:
    """(pid, batches, items) from one /metrics page; None without a process id."""
    totals = {"inference_batch_size_count": 0.0, "inference_batch_size_sum": 0.0}
    pid = None
    for name, value in _SAMPLE.findall(text):
        if name == "backend_process_id":
            pid = int(float(value))
        else:
            totals[name] += float(value)
    if pid is None:
        return None
    return pid, totals["inference_batch_size_count"], totals["inference_batch_size_sum"]


def snapshot(base_url: str, scrapes: int = 8) -> Snapshot:
    """Batch totals per process; a fresh connection per scrape reaches different workers."""
    seen: Snapshot = {}
    for _ in range(scrapes):
        try:
            response = httpx.get(base_url + "/metrics", timeout=5)
        except httpx.HTTPError:
            continue
        parsed = parse(response.text) if response.status_code == 200 else None
        if parsed is not None:
            pid, batches, items = parsed
            seen[pid] = (batches, items)
    return seen


def mean_batch(before: Snapshot, after: Snapshot) -> float | None:
    """Items per model call between two snapshots; None when no batch ran or nothing matched."""
    batches = items = 0.0
    for pid in before.keys() & after.keys():  # a process seen once has no change to show
        (b_before, i_before), (b_after, i_after) = before[pid], after[pid]
        batches += b_after - b_before
        items += i_after - i_before
    return items / batches if batches > 0 else None
