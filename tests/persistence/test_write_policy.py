"""The retry rules both background log writers follow."""

from __future__ import annotations

from collections import Counter

import pytest

from backends.core.persistence.write_policy import (
    Backlog,
    Bisection,
    EarlyHits,
    is_refusal_sqlstate,
)


@pytest.mark.parametrize(
    ("sqlstate", "refusal"),
    [
        ("22P02", True),  # invalid_text_representation (NaN in jsonb)
        ("22003", True),  # numeric_value_out_of_range
        ("23505", True),  # unique_violation
        ("57P01", False),  # admin_shutdown: the server is stopping
        ("08006", False),  # connection_failure
        ("53300", False),  # too_many_connections
        ("40P01", False),  # deadlock_detected
        (None, False),  # no answer from the server at all
    ],
)
def test_only_a_data_error_is_a_refusal(sqlstate: str | None, refusal: bool) -> None:
    assert is_refusal_sqlstate(sqlstate) is refusal


def test_a_full_backlog_refuses_new_rows_and_counts_them() -> None:
    backlog: Backlog[int] = Backlog(max_rows=3)
    assert [backlog.append(i) for i in range(5)] == [True, True, True, False, False]
    assert (len(backlog), backlog.overflowed) == (3, 2)
    assert backlog.take(2) == [0, 1]
    assert backlog.append(5) is True
    assert backlog.take(10) == [2, 5]


def _bisect(rows: list[int], bad: set[int]) -> tuple[list[list[int]], list[int]]:
    bisection = Bisection(rows)
    committed: list[list[int]] = []
    while (part := bisection.part()) is not None:
        if bad & set(part):
            bisection.refused()
        else:
            committed.append(part)
            bisection.written()
    return committed, bisection.refused_rows


@pytest.mark.parametrize("bad", [set(), {0}, {7}, {3, 4}, {0, 9}, set(range(10))])
def test_bisection_commits_every_good_row_once_and_isolates_the_bad(bad: set[int]) -> None:
    committed, refused = _bisect(list(range(10)), bad)
    assert sorted(row for part in committed for row in part) == sorted(set(range(10)) - bad)
    assert sorted(refused) == sorted(bad)


def test_bisection_of_one_bad_row_in_500_takes_few_transactions() -> None:
    bisection = Bisection(list(range(500)))
    writes = 0
    while (part := bisection.part()) is not None:
        writes += 1
        bisection.refused() if 250 in part else bisection.written()
    assert bisection.refused_rows == [250]
    assert writes <= 2 * 9 + 1


def test_bisection_interrupted_midway_returns_the_unwritten_rows_in_order() -> None:
    bisection = Bisection(list(range(8)))
    bisection.refused()  # [0..3], [4..7]
    bisection.written()  # [0..3] committed
    assert bisection.remaining() == [4, 5, 6, 7]


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
