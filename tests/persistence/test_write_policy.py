"""The retry rules both background log writers follow."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from backends.core.persistence.write_policy import (
    Backlog,
    Bisection,
    EarlyHits,
    IsolatingWrite,
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


@dataclass(frozen=True)
class _Row:
    request_id: str
    method: str = "POST"
    endpoint: str = "/api/v1/x"


class _Refused(Exception):
    pass


class _Away(Exception):
    pass


def _drive(
    write: IsolatingWrite[_Row], outcome: Callable[[list[_Row], Counter[str]], None]
) -> list[tuple[list[str], dict[str, int]]]:
    """Run ``write`` against ``outcome`` (raises _Refused or _Away); the committed attempts."""
    committed = []
    while (attempt := write.next()) is not None:
        try:
            outcome(*attempt)
        except _Refused as exc:
            write.refused(exc)
        else:
            write.committed()
            committed.append(([r.request_id for r in attempt[0]], dict(attempt[1])))
    return committed


def test_an_accepted_batch_is_one_transaction_with_its_hits() -> None:
    rows = [_Row("a"), _Row("b")]
    write = IsolatingWrite(rows, Counter({"k": 2}))
    assert _drive(write, lambda rows, hits: None) == [(["a", "b"], {"k": 2})]
    assert write.refused_rows == []


def test_a_refused_batch_keeps_its_good_rows_and_then_its_hits() -> None:
    rows = [_Row(str(i)) for i in range(5)]

    def outcome(part: list[_Row], hits: Counter[str]) -> None:
        if any(r.request_id == "3" for r in part):
            raise _Refused("22P02")

    write = IsolatingWrite(rows, Counter({"k": 1}))
    committed = _drive(write, outcome)
    assert sorted(i for ids, _ in committed for i in ids) == ["0", "1", "2", "4"]
    assert committed[-1] == ([], {"k": 1})  # the hits last, alone
    assert all(hits == {} for _, hits in committed[:-1])
    assert [r.request_id for r in write.refused_rows] == ["3"]


def test_refused_hits_alone_are_dropped_without_the_rows() -> None:
    def outcome(part: list[_Row], hits: Counter[str]) -> None:
        if hits:
            raise _Refused("23505")

    write = IsolatingWrite([_Row("a")], Counter({"k": 1}))
    assert _drive(write, outcome) == [(["a"], {})]
    assert write.refused_rows == []


def test_a_database_gone_midway_leaves_exactly_the_uncommitted_rows() -> None:
    rows = [_Row(str(i)) for i in range(8)]
    calls = 0

    def outcome(part: list[_Row], hits: Counter[str]) -> None:
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise _Refused("22P02")  # with its hits, the rows alone, then rows 0-3
        if calls == 5:
            raise _Away("08006")  # after rows 0-1 were committed

    write = IsolatingWrite(rows, Counter())
    assert write.uncommitted() == rows
    with pytest.raises(_Away):
        _drive(write, outcome)
    assert [r.request_id for r in write.uncommitted()] == ["2", "3", "4", "5", "6", "7"]
