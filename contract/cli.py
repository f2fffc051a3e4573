"""`python -m contract`: `check` (conformance run against any server) and `generate` (the spec)."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from contract.conformance import PHASES, PROFILES, RunOptions
from contract.read_only import links_left, writing_operations

DEFAULT_MAX_EXAMPLES = 10
DEFAULT_SEED = 20261124
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m contract", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("check", help="run the conformance suite against a server")
    check.add_argument(
        "--base-url", required=True, help="server to test, e.g. http://127.0.0.1:8001"
    )
    check.add_argument(
        "--spec",
        help="OpenAPI file or URL (e.g. http://host/openapi.json); default: contract/openapi.json",
    )
    check.add_argument(
        "--report",
        type=Path,
        help="directory for conformance-report.{json,yaml}, contract-report.json and JUnit XML",
    )
    check.add_argument(
        "--max-examples",
        type=_positive_int,
        default=DEFAULT_MAX_EXAMPLES,
        help=f"generated cases per operation and phase (default {DEFAULT_MAX_EXAMPLES})",
    )
    check.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"generation seed (default {DEFAULT_SEED})"
    )
    check.add_argument(
        "--compare", metavar="URL2", help="also send the same cases to URL2 and diff"
    )
    check.add_argument(
        "--phases",
        type=_phases,
        default=PHASES,
        help=f"comma-separated subset of {','.join(PHASES)} (default: all)",
    )
    check.add_argument(
        "--profile",
        type=_profiles,
        default=PROFILES,
        help=f"comma-separated conformance profiles to judge, of {','.join(PROFILES)} "
        "(default: all); behaviour checks the spec's x-promises, with stateful scenarios",
    )
    check.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="operations tested concurrently (default 1; >1 can hit CPython 3.11's "
        "thread-unsafe compile, gh-106905, reported as a run error)",
    )
    check.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="extra request header (repeatable), e.g. an API key for a gateway",
    )
    check.add_argument(
        "--request-timeout", type=float, default=30.0, help="seconds per request (default 30)"
    )
    check.add_argument(
        "--exclude-check",
        action="append",
        default=[],
        metavar="NAME",
        help="disable a check by name (repeatable), e.g. positive_data_acceptance",
    )
    check.add_argument("--no-probes", action="store_true", help="skip the unknown-route probes")
    check.add_argument(
        "--read-only",
        action="store_true",
        help="send no operation that writes (Operation.writes: RAG index, index-document, "
        "collection delete, post-analyze; unknown operations unless GET/HEAD/OPTIONS), in "
        "every phase and scenario: for a server sharing another's data (switch-check)",
    )

    generate = commands.add_parser(
        "generate", help="write contract/openapi.json from shared_schemas", add_help=False
    )
    generate.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["generate"]:
        # Forward everything (including --help and --check) to the generator untouched.
        try:
            generate = importlib.import_module("contract.generate")
        except ModuleNotFoundError as exc:
            if exc.name != "contract.generate":
                raise
            print("error: contract/generate.py is missing", file=sys.stderr)
            return EXIT_USAGE
        return int(generate.main(args_list[1:]))
    args = build_parser().parse_args(args_list)
    try:
        headers = dict(_header(value) for value in args.header)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    options = RunOptions(
        base_url=args.base_url.rstrip("/"),
        max_examples=args.max_examples,
        seed=args.seed,
        phases=args.phases,
        workers=args.workers,
        headers=headers,
        request_timeout=args.request_timeout,
        exclude_checks=tuple(args.exclude_check),
        profiles=args.profile,
        read_only=args.read_only,
    )
    return run_check(
        options,
        spec_location=args.spec,
        report_dir=args.report,
        compare_url=args.compare.rstrip("/") if args.compare else None,
        probes=not args.no_probes,
    )


def run_check(
    options: RunOptions,
    *,
    spec_location: str | None,
    report_dir: Path | None,
    compare_url: str | None,
    probes: bool = True,
) -> int:
    """Run the suite, print the table, write the reports; return the process exit code."""
    import schemathesis

    from contract import compare, conformance, conformance_report, report, scenarios
    from contract import probes as probe_mod
    from contract.promise_tally import PromiseTally
    from contract.results import PromiseResult
    from contract.spec import SpecError, load_spec

    out = sys.stdout
    unknown = sorted(set(options.exclude_checks) - set(conformance.known_checks()))
    if unknown:
        print(f"error: unknown check(s) {unknown}", file=sys.stderr)
        return EXIT_USAGE
    try:
        spec = load_spec(spec_location)
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    started_at = dt.datetime.now(dt.UTC)
    print(
        f"contract check: {options.base_url} | spec {spec.location} (sha256 {spec.sha256[:12]}) "
        f"| schemathesis {schemathesis.__version__} | seed {options.seed} "
        f"| max-examples {options.max_examples} | phases {','.join(options.phases)} "
        f"| profiles {','.join(options.profiles)}",
        file=out,
        flush=True,
    )
    skipped = writing_operations(spec.raw) if options.read_only else {}
    if skipped:
        print(f"read-only: not sent (they write): {', '.join(skipped)}", file=out, flush=True)
        if "stateful" in options.phases and not links_left(spec.raw):
            phases = tuple(phase for phase in options.phases if phase != "stateful")
            options = dataclasses.replace(options, phases=phases)
            print("read-only: no stateful phase (each link starts or ends at a write)", file=out)
    tally = PromiseTally(spec.raw) if "behaviour" in options.profiles else None
    outcome = conformance.run_engine(options, spec, tally)
    results = list(outcome.operations.values())
    if probes:
        results += probe_mod.run_probes(
            options.base_url, spec.raw, headers=options.headers, timeout=options.request_timeout
        )
    profiles: list[dict[str, Any]] = []
    promise_results: list[PromiseResult] = []
    if "core" in options.profiles:
        profiles.append(conformance_report.core_profile(results, outcome.errors))
    if tally is not None:
        reasons = scenarios.run_scenarios(
            options.base_url,
            tally,
            headers=options.headers,
            timeout=options.request_timeout,
            read_only=options.read_only,
        )
        for name in tally.results:  # the promises of operations never sent
            if name.split("/", 1)[0] in skipped.values():
                reasons.setdefault(name, "read-only run: the operation writes, never sent")
        promise_results = tally.finish(reasons)
        profiles.append(conformance_report.behaviour_profile(promise_results))
    compared = compare.compare(options, spec, compare_url) if compare_url else None
    core_ok = "core" not in options.profiles or all(r.passed for r in results)
    passed = (
        core_ok
        and not outcome.errors
        and all(p["result"] != "failure" for p in profiles)
        and (compared is None or compared.identical)
    )
    print(file=out)
    report.print_table(results, out)
    if compared is not None:
        report.print_compare_table(compared, out)
    summary = report.totals(results, outcome.errors)
    print(
        f"\n{'PASSED' if passed else 'FAILED'}: {summary['operations']} operations, "
        f"{summary['cases']} cases, {summary['failures']} distinct failures, "
        f"{summary['errors']} errors in {outcome.duration_s:.1f}s",
        file=out,
    )
    for message in outcome.errors:
        print(f"run error: {message}", file=out)
    conformance_report.print_summary(profiles, out)
    if report_dir is not None:
        meta = _meta(options, spec, started_at, outcome, compare_url)
        document = conformance_report.build(
            base_url=options.base_url,
            health=_health(options),
            spec=meta["spec"],
            run={
                "schemathesis_version": meta["schemathesis_version"],
                "seed": options.seed,
                "max_examples": options.max_examples,
                "phases": list(options.phases),
                "started_at": meta["started_at"],
                "duration_s": meta["duration_s"],
            },
            profiles=profiles,
        )
        for path in conformance_report.write(report_dir, document):
            print(f"wrote {path}", file=out)
        data = report.build_json_report(
            meta=meta, results=results, errors=outcome.errors, compare=compared, passed=passed
        )
        junit = report.build_junit(
            results,
            outcome.errors,
            compared,
            duration_s=outcome.duration_s,
            promises=promise_results,
        )
        for path in report.write_reports(report_dir, data, junit):
            print(f"wrote {path}", file=out)
    return EXIT_OK if passed else EXIT_FAILED


def _meta(
    options: RunOptions, spec: Any, started_at: dt.datetime, outcome: Any, compare_url: str | None
) -> dict[str, Any]:
    import schemathesis

    from contract.conformance import enabled_checks, opaque_body_operations, refusing_operations

    return {
        "target": {"base_url": options.base_url, "compare_url": compare_url},
        "spec": {
            "location": spec.location,
            "sha256": spec.sha256,
            "openapi": spec.openapi_version,
            "version": spec.api_version,
            "title": spec.title,
        },
        "schemathesis_version": schemathesis.__version__,
        "seed": options.seed,
        "max_examples": options.max_examples,
        "phases": list(options.phases),
        "workers": options.workers,
        "read_only": options.read_only,
        "checks": enabled_checks(options, spec),
        "positive_data_acceptance_skipped": opaque_body_operations(spec.raw),
        # judged by accepted_or_declared_refusal: accepted, or a refusal of their x-refusals
        "declared_refusals": refusing_operations(spec.raw),
        "started_at": started_at.isoformat(),
        "duration_s": round(outcome.duration_s, 3),
        "stop_reason": outcome.stop_reason,
    }


def _health(options: RunOptions) -> dict[str, Any]:
    """What the implementation says it is: its /health body, or why there is none."""
    import httpx

    try:
        response = httpx.get(
            options.base_url + "/health", headers=options.headers, timeout=options.request_timeout
        )
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return body if isinstance(body, dict) else {"status_code": response.status_code}


def _profiles(value: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in value.split(",") if part.strip())
    unknown = [name for name in names if name not in PROFILES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown profile(s) {unknown}; choose from {PROFILES}")
    return names


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return number


def _phases(value: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in value.split(",") if part.strip())
    unknown = [name for name in names if name not in PHASES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown phase(s) {unknown}; choose from {PHASES}")
    return names


def _header(value: str) -> tuple[str, str]:
    name, sep, rest = value.partition(":")
    if not sep or not name.strip():
        raise ValueError(f"header must look like 'Name: value', got {value!r}")
    return name.strip(), rest.strip()
