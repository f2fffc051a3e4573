"""One export run: every unsent closed slice becomes one Stripe meter event, once.

Per slice: skip it if it was sent; otherwise commit it as pending (its customer and
value), send the event, mark it sent. A failure (Stripe down, a 5xx, a refused event)
leaves that slice pending or unrecorded and the run goes on with the others; the next
run sends only what is not marked sent, a pending slice with its recorded value and the
same identifier, so Stripe drops it if the first attempt did arrive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Protocol, TextIO

import psycopg
import stripe

from billing import export_state
from billing.export_state import SENT
from billing.slices import UsageSlice, read_slices


class EventSender(Protocol):
    def send(self, usage: UsageSlice, customer: str, credits: int) -> None: ...


@dataclass
class ExportReport:
    sent: list[str] = field(default_factory=list)  # identifiers
    planned: list[str] = field(default_factory=list)  # dry run: what would be sent
    already_sent: int = 0
    failed: list[str] = field(default_factory=list)
    unmapped: set[str] = field(default_factory=set)  # organisations without a customer
    # sent slices whose usage grew afterwards (rows later than the settling time): not billed
    changed_after_export: list[str] = field(default_factory=list)


def export_usage(
    conn: psycopg.Connection,
    sender: EventSender | None,
    customers: dict[str, str],
    since: date,
    until: date,
    *,
    out: TextIO,
    secret: str = "",
) -> ExportReport:
    """Send the slices from ``since`` to ``until``; ``sender`` None is a dry run.

    ``secret`` (the API key) is blanked from any error text before it is printed.
    """
    report = ExportReport()
    export_state.lock_run(conn)
    done = export_state.recorded(conn, since, until)
    for usage in read_slices(conn, since, until):
        previous = done.get(usage.identifier)
        if previous is not None and previous.state == SENT:
            report.already_sent += 1
            if previous.credits != usage.credits:
                report.changed_after_export.append(usage.identifier)
            continue
        customer = previous.stripe_customer_id if previous else customers.get(usage.organization_id)
        if customer is None:
            report.unmapped.add(usage.organization_id)
            continue
        credits = previous.credits if previous else usage.credits
        line = (
            f"{usage.date} {usage.organization_id} {usage.category} {credits} credits "
            f"-> {customer} ({usage.identifier})"
        )
        if sender is None:
            report.planned.append(usage.identifier)
            print(f"would send {line}", file=out)
            continue
        if previous is None:
            export_state.mark_pending(conn, usage, customer)
        try:
            sender.send(usage, customer, credits)
        except stripe.StripeError as exc:
            report.failed.append(usage.identifier)
            print(f"failed {line}: {redact(_describe(exc), secret)}", file=out)
            continue
        export_state.mark_sent(conn, usage.identifier)
        report.sent.append(usage.identifier)
        print(f"sent {line}", file=out)
    return report


def _describe(exc: stripe.StripeError) -> str:
    status = f"HTTP {exc.http_status}: " if exc.http_status else ""
    return f"{type(exc).__name__}: {status}{exc.user_message or str(exc)}"


def redact(text: str, secret: str) -> str:
    """``text`` with every occurrence of ``secret`` blanked."""
    return text.replace(secret, "[redacted]") if secret else text
