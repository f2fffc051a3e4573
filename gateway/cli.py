"""`python -m gateway keys|budget|usage ...`: manage API keys and budgets, read usage.

Talks to DATABASE_URL (the tables of Django's migration 0003). A key is printed once, by
``keys create`` and ``keys rotate``; only its SHA-256 is stored. Changes reach running
gateways within GATEWAY_KEY_CACHE_TTL_S (their lookup cache).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from gateway.budgets import PERIODS
from gateway.keys import ADMIN_SCOPE, SCOPES, key_digest, new_key, public_prefix
from gateway.settings import GatewaySettings
from gateway.usage import UsageQuery, UsageQueryError, usage_rows
from shared_schemas.operations import API_GROUPS

COMMANDS = ("keys", "budget", "usage")


class CliError(Exception):
    """A command that cannot run; the message says why."""


def _scopes(value: str) -> list[str]:
    scopes = [s.strip() for s in value.split(",") if s.strip()]
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise argparse.ArgumentTypeError(
            f"unknown scope(s) {unknown}; choose from {', '.join(SCOPES)}"
        )
    return scopes


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gateway")
    commands = parser.add_subparsers(dest="command", required=True)

    keys = commands.add_parser("keys", help="API keys in Postgres").add_subparsers(
        dest="action", required=True
    )
    create = keys.add_parser("create", help="create a key and print it (once)")
    create.add_argument("--name", required=True)
    create.add_argument("--user", required=True, help="user id the key's traffic is billed to")
    create.add_argument("--org", required=True, help="organisation id")
    create.add_argument(
        "--scopes",
        type=_scopes,
        default=list(API_GROUPS),
        help=f"comma-separated route groups and/or '{ADMIN_SCOPE}' (default: every route group)",
    )
    create.add_argument("--expires-in-days", type=float, default=None)
    listing = keys.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--org", default=None)
    listing.add_argument("--json", action="store_true")
    for name, text in (("revoke", "revoke a key"), ("rotate", "new secret, same id")):
        action = keys.add_parser(name, help=text)
        action.add_argument("key_id")

    budget = commands.add_parser("budget", help="credit budgets").add_subparsers(
        dest="action", required=True
    )
    setting = budget.add_parser("set", help="set a budget (replaces the subject's budget)")
    clearing = budget.add_parser("clear", help="remove a budget")
    for sub in (setting, clearing):
        subject = sub.add_mutually_exclusive_group(required=True)
        subject.add_argument("--key", dest="key_id", help="an API key id")
        subject.add_argument("--org", help="an organisation id")
    setting.add_argument("--credits", type=int, required=True)
    setting.add_argument("--period", choices=PERIODS, required=True)
    budget.add_parser("list", help="list budgets")

    usage = commands.add_parser("usage", help="usage per key, organisation, day and category")
    usage.add_argument("--since", default="", help="first day, YYYY-MM-DD (default: 30 days)")
    usage.add_argument("--until", default="", help="last day, YYYY-MM-DD (default: today)")
    usage.add_argument("--org", default="")
    usage.add_argument("--key", dest="key_id", default="")
    usage.add_argument("--json", action="store_true")
    return parser


async def _run(args: argparse.Namespace, database_url: str) -> int:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1, timeout=10)
    try:
        if args.command == "keys":
            return await _keys(pool, args)
        if args.command == "budget":
            return await _budget(pool, args)
        return await _usage(pool, args)
    finally:
        await pool.close()


async def _keys(pool: asyncpg.Pool, args: argparse.Namespace) -> int:
    if args.action == "create":
        key = new_key()
        expires = None
        if args.expires_in_days is not None:
            expires = datetime.now(UTC) + timedelta(days=args.expires_in_days)
        key_id = await pool.fetchval(
            "INSERT INTO ml_api_keys (key_hash, prefix, name, user_id, organization_id, scopes,"
            " expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id::text",
            key_digest(key), public_prefix(key), args.name, args.user, args.org, args.scopes,
            expires,
        )  # fmt: skip
        _print_new_key(key_id, key)
        return 0
    if args.action == "list":
        rows = await pool.fetch(
            "SELECT id::text, prefix, name, user_id, organization_id, scopes, expires_at,"
            " revoked_at, created_at FROM ml_api_keys"
            " WHERE $1::text IS NULL OR organization_id = $1 ORDER BY created_at",
            args.org,
        )
        _print_rows([dict(row) for row in rows], args.json)
        return 0
    if args.action == "revoke":
        done = await pool.fetchval(
            "UPDATE ml_api_keys SET revoked_at = now() WHERE id::text = $1 AND revoked_at IS NULL"
            " RETURNING id::text",
            args.key_id,
        )
        if done is None:
            raise CliError(f"no active key with id {args.key_id}")
        print(f"revoked {done} (running gateways refuse it within their key cache TTL)")
        return 0
    key = new_key()  # rotate: the id, scopes, budgets and usage history stay
    done = await pool.fetchval(
        "UPDATE ml_api_keys SET key_hash = $2, prefix = $3 WHERE id::text = $1"
        " AND revoked_at IS NULL RETURNING id::text",
        args.key_id, key_digest(key), public_prefix(key),
    )  # fmt: skip
    if done is None:
        raise CliError(f"no active key with id {args.key_id}")
    _print_new_key(done, key)
    print("the previous secret stops working within the gateways' key cache TTL")
    return 0


def _print_new_key(key_id: str, key: str) -> None:
    print(f"id   {key_id}")
    print(f"key  {key}")
    print("the key is shown once: store it now, it cannot be read back")


async def _budget(pool: asyncpg.Pool, args: argparse.Namespace) -> int:
    if args.action == "list":
        rows = await pool.fetch(
            "SELECT subject_kind, subject_id, period, credits, updated_at FROM ml_credit_budgets"
            " ORDER BY subject_kind, subject_id"
        )
        _print_rows([dict(row) for row in rows], False)
        return 0
    kind, subject = ("key", args.key_id) if args.key_id else ("organization", args.org)
    if kind == "key" and not await pool.fetchval(
        "SELECT 1 FROM ml_api_keys WHERE id::text = $1", subject
    ):
        raise CliError(f"no key with id {subject}")
    if args.action == "clear":
        await pool.execute(
            "DELETE FROM ml_credit_budgets WHERE subject_kind = $1 AND subject_id = $2",
            kind, subject,
        )  # fmt: skip
        print(f"budget of {kind} {subject} cleared")
        return 0
    if args.credits < 0:
        raise CliError("--credits must be >= 0")
    await pool.execute(
        "INSERT INTO ml_credit_budgets (subject_kind, subject_id, period, credits)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (subject_kind, subject_id)"
        " DO UPDATE SET period = $3, credits = $4, updated_at = now()",
        kind, subject, args.period, args.credits,
    )  # fmt: skip
    print(f"budget of {kind} {subject}: {args.credits} credits per {args.period}")
    return 0


async def _usage(pool: asyncpg.Pool, args: argparse.Namespace) -> int:
    params = {"since": args.since, "until": args.until}
    params |= {"organization_id": args.org, "api_key_id": args.key_id}
    try:
        query = UsageQuery.parse({k: v for k, v in params.items() if v})
    except UsageQueryError as exc:
        raise CliError(str(exc)) from None
    rows = [row.as_json() for row in await usage_rows(pool, query)]
    if args.json:
        body = {"since": query.since.isoformat(), "until": query.until.isoformat(), "usage": rows}
        print(json.dumps(body, indent=2))
    else:
        _print_rows(rows, False)
    return 0


def _print_rows(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        print("(none)")
        return
    cells = [[_cell(v) for v in row.values()] for row in rows]
    header = list(rows[0])
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    for line in (header, *cells):
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def main(argv: Sequence[str]) -> int:
    """Run one command; 0 on success, 1 when it cannot be done, 2 on bad usage."""
    args = _parser().parse_args(argv)
    database_url = GatewaySettings().database_url
    if not database_url:
        print(
            "gateway: DATABASE_URL is not set (the database that holds the keys)", file=sys.stderr
        )
        return 2
    try:
        return asyncio.run(_run(args, database_url))
    except CliError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 1
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"gateway: database error: {exc}", file=sys.stderr)
        return 1
