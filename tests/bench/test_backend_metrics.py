"""The mean batch size read from a backend's /metrics pages, worker by worker."""

from __future__ import annotations

from bench.backend_metrics import mean_batch, parse

PAGE = """# TYPE inference_batch_size histogram
inference_batch_size_bucket{{le="1.0",model="m"}} 1.0
inference_batch_size_count{{model="m"}} {count}
inference_batch_size_sum{{model="m"}} {items}
inference_batch_size_count{{model="whisper"}} 1.0
inference_batch_size_sum{{model="whisper"}} 1.0
backend_process_id {pid}
"""


def test_a_page_gives_its_process_and_totals_over_every_model() -> None:
    assert parse(PAGE.format(count=3.0, items=40.0, pid="123.0")) == (123, 4.0, 41.0)
    assert parse("inference_batch_size_count 1.0\n") is None  # no pid: cannot be matched


def test_the_mean_uses_only_processes_seen_before_and_after() -> None:
    before = {1: (10.0, 100.0), 2: (5.0, 5.0)}
    after = {1: (20.0, 300.0), 2: (7.0, 25.0), 3: (1000.0, 1000.0)}  # 3: its history only
    assert mean_batch(before, after) == (200.0 + 20.0) / (10.0 + 2.0)
    assert mean_batch(before, before) is None
