"""`python -m gateway switch-check --to <backend>`: may ML_SERVICE_BACKEND be switched to it?

A verdict per operation from the shadow comparisons stored in Postgres (``ready`` after
``GATEWAY_SWITCH_MIN_REQUESTS`` mirrored requests matching at least
``GATEWAY_SWITCH_MIN_MATCH_RATE``; ``differs``; ``not enough traffic``; /health and /ready,
which the gateway answers itself, and the operations that write are never mirrored), then
the contract suite against the candidate. That check is read-only (``check --read-only``):
the candidate shares the primary's database and vector store, so no operation that writes
is sent to it, in any phase or scenario. The writing operations are therefore judged
by neither part here, only where the contract suite runs against a backend with data of
its own (CI: tests/conformance). Exit 0 only when every mirrored operation is ready and
the contract check passed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

import asyncpg

from gateway.registry import build_registry
from gateway.settings import GatewayConfigError, GatewaySettings
from gateway.shadow_report import PASSING, build_report, verdicts

EXIT_READY, EXIT_NOT_READY, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gateway switch-check", description=__doc__)
    parser.add_argument("--to", required=True, help="the candidate backend, e.g. django")
    parser.add_argument("--no-contract", action="store_true", help="judge the shadow results only")
    parser.add_argument(
        "--max-examples",
        default="3",
        help="generated cases per operation and phase of the contract check (default 3)",
    )
    return parser


async def _report(settings: GatewaySettings, candidate: str) -> dict[str, Any]:
    assert settings.database_url
    pool = await asyncpg.create_pool(settings.database_url, min_size=0, max_size=1)
    try:
        return await build_report(pool, settings, candidate)
    finally:
        await pool.close()


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    out = sys.stdout
    try:
        settings = GatewaySettings()
        registry = build_registry(settings)
    except GatewayConfigError as exc:
        print(f"switch-check: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    candidate = registry.backends.get(args.to.lower())
    if candidate is None:
        known = ", ".join(registry.names)
        print(f"switch-check: unknown backend {args.to!r}; known: {known}", file=sys.stderr)
        return EXIT_USAGE
    if not settings.database_url:
        print("switch-check: DATABASE_URL is empty: no shadow results to read", file=sys.stderr)
        return EXIT_USAGE
    report = asyncio.run(_report(settings, candidate.name))
    stored = report["candidates"].get(candidate.name, {"operations": {}})
    operations: dict[str, dict[str, Any]] = stored["operations"]
    judged = verdicts(operations, settings)
    print(
        f"switch-check: {registry.selected.name} -> {candidate.name} "
        f"(ready: >= {settings.switch_min_requests} mirrored requests, "
        f">= {settings.switch_min_match_rate:.0%} matching)",
        file=out,
    )
    print(f"{'operation':<34} {'verdict':<24} {'requests':>8} {'match':>7}  differing", file=out)
    for op_id, verdict in judged.items():
        seen = operations.get(op_id, {})
        fields = ", ".join(f"{f['field']} ({f['requests']})" for f in seen.get("top_fields", []))
        rate = f"{seen['match_rate']:.1%}" if seen else "-"
        print(
            f"{op_id:<34} {verdict:<24} {seen.get('requests', 0):>8} {rate:>7}  {fields}",
            file=out,
        )
    ready = all(verdict in PASSING for verdict in judged.values())
    contract_ok = True
    if not args.no_contract:
        from contract.cli import main as contract_main

        print(f"\ncontract check of {candidate.name} ({candidate.base_url}):", file=out)
        contract_ok = (
            contract_main(
                [
                    "check",
                    "--base-url",
                    candidate.base_url,
                    "--max-examples",
                    args.max_examples,
                    # the candidate shares the primary's database: nothing that writes
                    "--read-only",
                ]
            )
            == 0
        )
    passed = ready and contract_ok
    print(
        f"\n{'READY' if passed else 'NOT READY'}: switch ML_SERVICE_BACKEND to "
        f"{candidate.name} {'now' if passed else 'not yet'}"
        + ("" if contract_ok else " (the contract check failed)"),
        file=out,
    )
    return EXIT_READY if passed else EXIT_NOT_READY
