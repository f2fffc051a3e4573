"""The collector tuning every served process applies (gateway, FastAPI, each Django worker)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import gc
from shared_schemas.collector import GEN0_THRESHOLD, tune_collector
before = gc.get_freeze_count()
tune_collector()
assert gc.get_threshold()[0] == GEN0_THRESHOLD == 10_000, gc.get_threshold()
assert gc.get_freeze_count() > before + 1000, (before, gc.get_freeze_count())
print("ok")
"""


def test_tuning_freezes_the_start_up_heap_and_raises_the_young_threshold() -> None:
    # in a child process: the setting is process-wide and must not leak into the suite
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
