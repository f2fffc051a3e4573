"""``python -m billing export [--dry-run] [--since DAY] [--until DAY]``.

Sends closed days of usage to Stripe as meter events (billing.export); ``--dry-run``
prints what would be sent and sends nothing. Exit status: 0 done, 1 some events failed
(run again: only the rest is sent), 2 a configuration error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TextIO

import psycopg

from billing.export import export_usage
from billing.export_state import ExportAlreadyRunning
from billing.settings import BillingSettings
from billing.slices import last_closed_day
from billing.stripe_meter import MeterEvents


def main(
    argv: Sequence[str] | None = None,
    *,
    settings: BillingSettings | None = None,
    now: datetime | None = None,
    out: TextIO | None = None,
) -> int:
    args = _parser().parse_args(argv)
    out = out or sys.stdout
    settings = settings or BillingSettings()
    now = now or datetime.now(UTC)
    closed = last_closed_day(now, settings.settle_minutes)
    until = args.until or closed
    if until > closed:
        print(f"--until {until}: that day is not closed yet; exporting up to {closed}", file=out)
        until = closed
    since = args.since or (now.date() - timedelta(days=settings.lookback_days))
    if settings.database_url is None:
        print("DATABASE_URL is not set: the export reads ml_service_usage", file=out)
        return 2
    key = settings.stripe_api_key.get_secret_value() if settings.stripe_api_key else ""
    if not args.dry_run and not key:
        print("STRIPE_API_KEY is not set (use --dry-run to see what would be sent)", file=out)
        return 2
    sender = None
    if not args.dry_run:
        sender = MeterEvents(
            key, settings.meter_event_name, max_network_retries=settings.stripe_max_network_retries
        )
    print(f"billing export {since} .. {until}{' (dry run)' if args.dry_run else ''}", file=out)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        try:
            report = export_usage(
                conn, sender, settings.customers, since, until, out=out, secret=key
            )
        except ExportAlreadyRunning as exc:
            print(exc, file=out)
            return 2
    print(
        f"sent {len(report.sent)}, would send {len(report.planned)}, already sent "
        f"{report.already_sent}, failed {len(report.failed)}",
        file=out,
    )
    if report.unmapped:
        print(
            "no Stripe customer in BILLING_CUSTOMERS for: " + ", ".join(sorted(report.unmapped)),
            file=out,
        )
    if report.changed_after_export:
        print(
            f"{len(report.changed_after_export)} sent slice(s) grew after they were sent "
            "(not billed): " + ", ".join(report.changed_after_export),
            file=out,
        )
    return 1 if report.failed else 0


def _day(value: str) -> date:
    return date.fromisoformat(value)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m billing")
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="send closed days of usage to Stripe")
    export.add_argument("--dry-run", action="store_true", help="print, send nothing")
    export.add_argument("--since", type=_day, help="first day (default: 35 days back)")
    export.add_argument("--until", type=_day, help="last day (default: the last closed day)")
    return parser


if __name__ == "__main__":
    sys.exit(main())
