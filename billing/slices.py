"""Usage slices: one organisation's credits of one closed day in one category.

A slice is what one Stripe meter event carries. Its identifier is derived from its key
alone (never from its value or the time of the run), so every run, retry or re-send of
the same slice names the same event and Stripe drops a repeat.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import psycopg

# Organisations' usage per day and category; anonymous usage (no organisation) is not
# billable. Summed over users and backends: the slice is the organisation's day.
_SLICES = """
SELECT organization_id, date, endpoint_category, SUM(total_credits)::bigint
FROM ml_service_usage
WHERE organization_id IS NOT NULL AND date BETWEEN %s AND %s
GROUP BY organization_id, date, endpoint_category
HAVING SUM(total_credits) > 0
ORDER BY date, organization_id, endpoint_category
"""


@dataclass(frozen=True, slots=True)
class UsageSlice:
    organization_id: str
    date: date
    category: str
    credits: int

    @property
    def identifier(self) -> str:
        """Stripe's event identifier: deterministic, at most 100 characters."""
        key = "\x1f".join((self.organization_id, self.date.isoformat(), self.category))
        return "mlapi-" + hashlib.sha256(key.encode()).hexdigest()[:40]

    @property
    def timestamp(self) -> int:
        """The event's time: the day's last second, so it counts in that day's period."""
        end = datetime.combine(self.date, time(23, 59, 59), tzinfo=UTC)
        return int(end.timestamp())


def last_closed_day(now: datetime, settle_minutes: int) -> date:
    """The latest day that ended at least ``settle_minutes`` before ``now`` (UTC).

    A day still running is never billed; the settling time lets rows the backends
    buffered (a write batch, a database outage) reach the usage table first.
    """
    return (now.astimezone(UTC) - timedelta(minutes=settle_minutes)).date() - timedelta(days=1)


def read_slices(conn: psycopg.Connection, since: date, until: date) -> list[UsageSlice]:
    """Every billable slice from ``since`` to ``until`` (inclusive), oldest first."""
    with conn.cursor() as cur:
        cur.execute(_SLICES, (since, until))
        return [UsageSlice(org, day, category, int(total)) for org, day, category, total in cur]
