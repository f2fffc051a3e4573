"""The conformance report per implementation, after the Kubernetes Gateway API's ConformanceReport.

One document per run: the implementation under test (its URL and what its /health says),
the contract (version and sha256), the suite (version, seed, date), then one entry per
profile with its result (success, partial or failure), passed/failed/skipped counts and
the tests named. Written as JSON and YAML beside the JUnit XML.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from contract.results import OperationResult, PromiseResult

SUITE_VERSION = "2.0.0"
API_VERSION = "conformance.mlapi/v1"
JSON_NAME = "conformance-report.json"
YAML_NAME = "conformance-report.yaml"
PROFILE_DESCRIPTIONS = {
    "core": "Shapes, status codes and the error shape, per operation (schemathesis checks).",
    "behaviour": "The promises of the spec's x-promises: one test per operation and promise.",
}


def _result(failed: int, skipped: int) -> str:
    """Gateway API semantics: any failure fails; otherwise skipped tests make it partial."""
    if failed:
        return "failure"
    return "partial" if skipped else "success"


def core_profile(results: Sequence[OperationResult], errors: Sequence[str]) -> dict[str, Any]:
    """Each operation (and probe) is a test; one with no answered case is skipped."""
    failed = [r.label for r in results if not r.passed]
    skipped = [r.label for r in results if r.passed and r.cases == 0]
    passed = len(results) - len(failed) - len(skipped)
    failures = [
        {"test": r.label, "message": f.summary(), "reproduce": f.reproduce}
        for r in results
        for f in r.failures
    ]
    failures += [
        {"test": r.label, "message": e, "reproduce": ""} for r in results for e in r.errors
    ]
    failures += [{"test": "run", "message": e, "reproduce": ""} for e in errors]
    return {
        "name": "core",
        "description": PROFILE_DESCRIPTIONS["core"],
        "result": _result(len(failed) + len(errors), len(skipped)),
        "statistics": {
            "passed": passed,
            "failed": len(failed) + len(errors),
            "skipped": len(skipped),
        },
        "failed_tests": failed + (["run"] if errors else []),
        "skipped_tests": skipped,
        "failures": failures,
    }


def behaviour_profile(results: Sequence[PromiseResult]) -> dict[str, Any]:
    """Each declared promise is a test: passed, failed, or skipped with the reason."""
    failed = [r.name for r in results if r.status == "failed"]
    skipped = [r for r in results if r.status == "skipped"]
    return {
        "name": "behaviour",
        "description": PROFILE_DESCRIPTIONS["behaviour"],
        "result": _result(len(failed), len(skipped)),
        "statistics": {
            "passed": sum(r.status == "passed" for r in results),
            "failed": len(failed),
            "skipped": len(skipped),
        },
        "failed_tests": failed,
        "skipped_tests": [r.name for r in skipped],
        "skip_reasons": {r.name: r.skip_reason for r in skipped},
        "failures": [
            {
                "test": r.name,
                "operation": r.operation,
                "promise": r.statement,
                "message": f.message,
                "reproduce": f.reproduce,
            }
            for r in results
            for f in r.failures
        ],
        "tests": [r.as_dict() for r in results],
    }


def build(
    *,
    base_url: str,
    health: Mapping[str, Any],
    spec: Mapping[str, Any],
    run: Mapping[str, Any],
    profiles: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """The whole report document."""
    return {
        "apiVersion": API_VERSION,
        "kind": "ConformanceReport",
        "date": run["started_at"],
        "implementation": {"url": base_url, "health": dict(health)},
        "contract": dict(spec),
        "suite": {"name": "python -m contract check", "version": SUITE_VERSION, **run},
        "profiles": list(profiles),
        "succeeded": all(p["result"] != "failure" for p in profiles),
    }


def write(directory: Path, report: Mapping[str, Any]) -> list[Path]:
    """conformance-report.json and .yaml in `directory`."""
    import yaml

    directory.mkdir(parents=True, exist_ok=True)
    json_path, yaml_path = directory / JSON_NAME, directory / YAML_NAME
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    yaml_path.write_text(
        yaml.safe_dump(dict(report), sort_keys=False, allow_unicode=True, width=100),
        encoding="utf-8",
    )
    return [json_path, yaml_path]


def print_summary(profiles: Sequence[Mapping[str, Any]], out: TextIO) -> None:
    """Per profile: result and counts, then every failure with the curl that reproduces it."""
    print(file=out)
    for profile in profiles:
        stats = profile["statistics"]
        print(
            f"profile {profile['name']:<9} {profile['result'].upper():<8} "
            f"passed {stats['passed']}, failed {stats['failed']}, skipped {stats['skipped']}",
            file=out,
        )
    for profile in profiles:
        for failure in profile["failures"]:
            print(f"\nFAIL [{profile['name']}] {failure['test']}: {failure['message']}", file=out)
            if failure.get("promise"):
                print(f"  promise: {failure['promise']}", file=out)
            if failure.get("reproduce"):
                print("  reproduce:", file=out)
                for line in str(failure["reproduce"]).splitlines():
                    print(f"    {line}", file=out)
