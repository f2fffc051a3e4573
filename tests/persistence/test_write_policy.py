"""The retry rules both background log writers follow."""

from __future__ import annotations

from collections import Counter

from backends.core.persistence.write_policy import BatchRetry, EarlyHits


def test_a_refused_batch_is_retried_then_dropped() -> None:
    retry = BatchRetry(max_attempts=3)
    assert [retry.failed(), retry.failed(), retry.failed()] == [True, True, False]
    assert retry.failed() is True  # the next batch starts afresh
    retry.succeeded()
    assert [retry.failed(), retry.failed()] == [True, True]


def test_an_early_hit_is_counted_again_until_its_row_appears() -> None:
    hits = EarlyHits(retries=2)
    hits.settle("k", 3, found=False)
    assert hits.take() == Counter({"k": 3})
    assert hits.take() == Counter()
    hits.settle("k", 3, found=True)  # the row arrived: retries for k are forgotten
    hits.settle("k", 1, found=False)
    assert hits.take() == Counter({"k": 1})


def test_an_early_hit_whose_row_never_comes_is_given_up() -> None:
    hits = EarlyHits(retries=2)
    for _ in range(2):
        hits.settle("k", 1, found=False)
        assert hits.take() == Counter({"k": 1})
    hits.settle("k", 1, found=False)
    assert hits.take() == Counter()
