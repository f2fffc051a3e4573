"""Which slices were sent (ml_billing_export, migration 0005) and the lock of one run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import psycopg

from billing.slices import UsageSlice

PENDING = "pending"
SENT = "sent"
# pg_try_advisory_lock key of a run ("mlbi" in ASCII): two runs never send side by side
_RUN_LOCK = 0x6D6C6269


@dataclass(frozen=True, slots=True)
class Recorded:
    identifier: str
    stripe_customer_id: str
    credits: int
    state: str


class ExportAlreadyRunning(RuntimeError):
    """Another export holds the run lock."""


def lock_run(conn: psycopg.Connection) -> None:
    """Take the session-level run lock (released when the connection closes)."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", (_RUN_LOCK,))
        row = cur.fetchone()
    if row is None or not row[0]:
        raise ExportAlreadyRunning("another billing export is running; try again when it ends")


def recorded(conn: psycopg.Connection, since: date, until: date) -> dict[str, Recorded]:
    """The rows of slices between the two days, by identifier."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT identifier, stripe_customer_id, credits, state FROM ml_billing_export "
            "WHERE date BETWEEN %s AND %s",
            (since, until),
        )
        return {row[0]: Recorded(*row) for row in cur}


def mark_pending(conn: psycopg.Connection, usage: UsageSlice, customer: str) -> None:
    """Commit the slice's value before it is sent: a re-send repeats exactly this event."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "INSERT INTO ml_billing_export (identifier, organization_id, date, "
            "endpoint_category, stripe_customer_id, credits, state) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                usage.identifier, usage.organization_id, usage.date, usage.category,
                customer, usage.credits, PENDING,
            ),
        )  # fmt: skip


def mark_sent(conn: psycopg.Connection, identifier: str) -> None:
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "UPDATE ml_billing_export SET state = %s, sent_at = now() WHERE identifier = %s",
            (SENT, identifier),
        )
