"""The conformance CLI against a conforming and a deliberately broken server."""

from __future__ import annotations

import json
import subprocess
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from contract.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "contract", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _report(directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / "contract-report.json").read_text())
    return data


def _by_operation(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {op["operation"]: op for op in report["operations"]}


def _checks(operation: dict[str, Any]) -> set[str]:
    return {failure["check"] for failure in operation["failures"]}


def test_conforming_server_passes(good_url: str, spec_path: Path, tmp_path: Path) -> None:
    proc = _run_cli(
        "check",
        "--base-url",
        good_url,
        "--spec",
        str(spec_path),
        "--report",
        str(tmp_path),
        "--max-examples",
        "5",
        "--seed",
        "7",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASSED" in proc.stdout
    for label in ("GET /health", "POST /items", "GET /items", "GET /items/{item_id}"):
        assert label in proc.stdout

    report = _report(tmp_path)
    assert report["passed"] is True
    assert report["target"]["base_url"] == good_url
    assert report["seed"] == 7
    assert report["spec"]["version"] == "1.2.3"
    assert len(report["spec"]["sha256"]) == 64
    assert report["schemathesis_version"].startswith("4.")
    assert report["totals"]["failures"] == 0
    assert report["totals"]["errors"] == 0
    operations = _by_operation(report)
    assert operations["POST /items"]["cases"] > 10
    # Negative cases reached the server and were rejected with documented errors.
    assert "422" in operations["POST /items"]["status_codes"]
    assert "stateful" in operations["GET /items/{item_id}"]["phases"]
    assert operations["PROBE GET /contract-probe/no-such-route"]["status_codes"] == {"404": 1}
    assert {"error_response_shape", "no_internal_error", "negative_data_rejection"} <= set(
        report["checks"]
    )

    suite = ET.parse(tmp_path / "contract-junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert suite.get("failures") == "0"
    assert int(suite.get("tests", "0")) == len(report["operations"])


def test_violating_server_fails(bad_url: str, spec_path: Path, tmp_path: Path) -> None:
    proc = _run_cli(
        "check",
        "--base-url",
        bad_url,
        "--spec",
        str(spec_path),
        "--report",
        str(tmp_path),
        "--max-examples",
        "5",
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED" in proc.stdout
    rows = {line.split("  ")[0].strip(): line for line in proc.stdout.splitlines()}
    # The 500 is the most severe failure of POST /items, so the table leads with it.
    assert "[500]" in rows["POST /items"]
    assert "negative_data_rejection" in rows["GET /items"]
    # Columns: operation, cases, distinct failures, first failure.
    assert int(rows["GET /items/{item_id}"].split()[3]) >= 2
    assert "error_response_shape [404]" in rows["PROBE GET /contract-probe/no-such-route"]

    report = _report(tmp_path)
    assert report["passed"] is False
    operations = _by_operation(report)
    assert {"no_internal_error", "not_a_server_error"} <= _checks(operations["POST /items"])
    assert "response_schema_conformance" in _checks(operations["GET /items/{item_id}"])
    assert "negative_data_rejection" in _checks(operations["GET /items"])
    assert "error_response_shape" in _checks(operations["PROBE GET /contract-probe/no-such-route"])
    assert operations["GET /health"]["passed"] is False  # plain-text 405 body
    assert report["totals"]["failures"] >= 6

    junit = ET.parse(tmp_path / "contract-junit.xml").getroot()
    failed = {
        case.get("name"): case.find("failure")
        for case in junit.iter("testcase")
        if case.find("failure") is not None
    }
    assert {"POST /items", "GET /items", "GET /items/{item_id}"} <= set(failed)
    post_failure = failed["POST /items"]
    assert post_failure is not None
    assert "no_internal_error" in (post_failure.text or "")
    assert "curl" in (post_failure.text or "")


def test_compare_reports_differences(
    good_url: str, bad_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "check",
            "--base-url",
            good_url,
            "--spec",
            f"{good_url}/openapi.json",
            "--compare",
            bad_url,
            "--report",
            str(tmp_path),
            "--max-examples",
            "5",
            "--phases",
            "coverage",
            "--no-probes",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1, out
    assert f"B = {bad_url}" in out

    report = _report(tmp_path)
    assert report["spec"]["location"] == f"{good_url}/openapi.json"
    assert report["totals"]["failures"] == 0  # A itself conforms: the failure is the difference
    compare = report["compare"]
    assert compare["identical"] is False
    by_op = {op["operation"]: op for op in compare["operations"]}
    post = by_op["POST /items"]
    assert post["status_differences"] > 0
    assert any(d["status_a"] == 200 and d["status_b"] == 500 for d in post["differences"])
    get_item = by_op["GET /items/{item_id}"]
    assert any(d["conforms_a"] and not d["conforms_b"] for d in get_item["differences"])
    assert by_op["GET /health"]["status_differences"] == 0

    compare_suite = ET.parse(tmp_path / "contract-junit.xml").getroot().findall("testsuite")[1]
    assert compare_suite.get("name") == "contract-compare"
    assert int(compare_suite.get("failures", "0")) >= 3


def test_compare_reports_a_value_difference_the_schema_allows(
    fresh_and_drifted: tuple[str, str], spec_path: Path, tmp_path: Path
) -> None:
    good, drifted = fresh_and_drifted
    code = main(
        [
            "check",
            "--base-url",
            good,
            "--spec",
            str(spec_path),
            "--compare",
            drifted,
            "--report",
            str(tmp_path),
            "--max-examples",
            "3",
            "--phases",
            "coverage",
            "--no-probes",
        ]
    )
    assert code == 1
    by_op = {op["operation"]: op for op in _report(tmp_path)["compare"]["operations"]}
    listed = by_op["GET /items"]
    assert listed["status_differences"] == listed["conformance_differences"] == 0
    assert listed["value_differences"] > 0
    # the conformance run before the comparison created items on the first server only, so
    # the lists differ too; the drifted total is what the schema cannot catch
    fields = [f for d in listed["differences"] for f in d["fields"]]
    assert "$.total" in {f["path"] for f in fields}
    assert all(not op["status_differences"] for op in by_op.values())
    assert all(not op["conformance_differences"] for op in by_op.values())


def test_compare_same_server_is_identical(good_url: str, spec_path: Path) -> None:
    code = main(
        [
            "check",
            "--base-url",
            good_url,
            "--spec",
            str(spec_path),
            "--compare",
            good_url,
            "--max-examples",
            "3",
            "--phases",
            "coverage",
            "--no-probes",
        ]
    )
    assert code == 0


@pytest.mark.parametrize(
    "extra",
    [["--exclude-check", "no_such_check"], ["--spec", "/nonexistent/openapi.json"]],
)
def test_usage_errors_exit_2(good_url: str, spec_path: Path, extra: list[str]) -> None:
    args = ["check", "--base-url", good_url, "--spec", str(spec_path), *extra]
    assert main(args) == 2


def test_generate_forwards_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str] | None] = []

    def fake_main(argv: list[str] | None = None) -> int:
        seen.append(argv)
        return 3

    module = types.ModuleType("contract.generate")
    module.main = fake_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "contract.generate", module)
    assert main(["generate", "--check"]) == 3
    assert seen == [["--check"]]
