"""Budget periods and the credits header, without Redis (gateway.budgets)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.budgets import charged_credits, counter_key, period_bounds
from gateway.keys import Budget


@pytest.mark.parametrize(
    ("period", "now", "start", "end"),
    [
        ("day", datetime(2026, 12, 2, 15, 4, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC),
         datetime(2026, 12, 3, tzinfo=UTC)),
        ("day", datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC),
         datetime(2027, 1, 1, tzinfo=UTC)),
        ("month", datetime(2026, 2, 28, 12, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC),
         datetime(2026, 3, 1, tzinfo=UTC)),
        ("month", datetime(2026, 12, 31, 23, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC),
         datetime(2027, 1, 1, tzinfo=UTC)),
        ("month", datetime(2026, 1, 31, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC),
         datetime(2026, 2, 1, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_period_bounds(period: str, now: datetime, start: datetime, end: datetime) -> None:
    assert period_bounds(period, now) == (start, end)


def test_counters_are_per_subject_and_period() -> None:
    budget = Budget("organization", "acme", "month", 10)
    start, _ = period_bounds("month", datetime(2026, 12, 2, tzinfo=UTC))
    assert counter_key(budget, start) == "gw:budget:organization:acme:2026-12-01"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(b"12", 12), (b"0", 0), (b"-3", 0), (b"1.5", 0), (b"", 0), (b"9" * 18, 10**18 - 1),
     (b"9" * 19, 0)],
)  # fmt: skip
def test_charged_credits(value: bytes, expected: int) -> None:
    assert charged_credits(value) == expected
