"""The behaviour profile and the conformance report, against servers wrong in one behaviour.

Each wrong server answers schema-valid (its core profile succeeds) and breaks exactly one
promise of the real contract; the suite must fail it naming the operation and the promise,
with a curl sequence that reproduces it. The correct server passes both profiles.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from contract.cli import main
from tests.contract_cli.behaviour_server import DEFECTS, build_app, subset_spec
from tests.contract_cli.conftest import _Server

# Small runs: the scenarios and fixed probes decide the relations; generated cases add breadth.
QUICK = ["--max-examples", "1", "--phases", "examples", "--seed", "3"]


@pytest.fixture(scope="module")
def subset_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "openapi.json"
    path.write_text(json.dumps(subset_spec()))
    return path


@pytest.fixture
def correct_url() -> Iterator[str]:
    with _Server(build_app()) as url:
        yield url


def _check(url: str, spec: Path, report: Path, *extra: str) -> int:
    return main(["check", "--base-url", url, "--spec", str(spec), "--report", str(report), *extra])


def _conformance(directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / "conformance-report.json").read_text())
    return data


def _profile(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in report["profiles"] if p["name"] == name)


def test_correct_server_passes_both_profiles(
    correct_url: str, subset_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every phase, one generated example each: ~1000 cases in 18 s on an idle 2-core machine.
    code = _check(correct_url, subset_path, tmp_path, "--max-examples", "1", "--seed", "11")
    out = capsys.readouterr().out
    assert code == 0, out
    report = _conformance(tmp_path)
    assert report["kind"] == "ConformanceReport"
    assert report["implementation"]["url"] == correct_url
    assert report["implementation"]["health"]["backend"] == "fake-correct"
    assert report["contract"]["version"] == subset_spec()["info"]["version"]
    assert re.fullmatch(r"[0-9a-f]{64}", report["contract"]["sha256"])
    assert report["suite"]["seed"] == 11
    assert report["suite"]["version"]
    assert report["date"]
    for name in ("core", "behaviour"):
        profile = _profile(report, name)
        assert profile["result"] == "success", profile["failures"] or profile["skipped_tests"]
        assert profile["statistics"]["failed"] == profile["statistics"]["skipped"] == 0
    behaviour = _profile(report, "behaviour")
    tests = {t["name"]: t for t in behaviour["tests"]}
    # Every defect's promise was checked for real on the correct server, not skipped.
    assert set(DEFECTS.values()) <= {name for name, t in tests.items() if t["checked"] > 0}
    assert behaviour["statistics"]["passed"] == len(tests) > len(DEFECTS)
    assert "profile behaviour SUCCESS" in out
    # The YAML twin says the same.
    assert yaml.safe_load((tmp_path / "conformance-report.yaml").read_text()) == report
    assert (tmp_path / "contract-junit.xml").is_file()


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_wrong_server_fails_naming_the_operation_and_promise(
    defect: str, subset_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = DEFECTS[defect]
    with _Server(build_app(defect)) as url:
        code = _check(url, subset_path, tmp_path, *QUICK)
    out = capsys.readouterr().out
    assert code == 1, out
    report = _conformance(tmp_path)
    assert _profile(report, "core")["result"] != "failure"  # schema-valid: only behaviour is off
    behaviour = _profile(report, "behaviour")
    assert behaviour["result"] == "failure"
    assert expected in behaviour["failed_tests"], behaviour["failed_tests"]
    failure = next(f for f in behaviour["failures"] if f["test"] == expected)
    operation_id, promise_id = expected.split("/")
    spec_op = next(
        op for item in subset_spec()["paths"].values() for op in item.values()
        if op["operationId"] == operation_id
    )  # fmt: skip
    statement = next(p["statement"] for p in spec_op["x-promises"] if p["id"] == promise_id)
    assert failure["promise"] == statement
    assert failure["operation"].split(" ", 1)[1].split("{")[0] in failure["reproduce"]
    assert failure["reproduce"].startswith("curl ")
    # The console names the test and the promise and prints the curl(s).
    block = out[out.index(f"FAIL [behaviour] {expected}:") :]
    assert f"promise: {statement}" in block.splitlines()[1]
    assert "reproduce:" in block and "    curl -sS -i -X" in block


def test_core_profile_alone_does_not_see_behaviour(subset_path: Path, tmp_path: Path) -> None:
    with _Server(build_app("ascending-search")) as url:
        code = _check(url, subset_path, tmp_path, *QUICK, "--profile", "core")
    assert code == 0
    report = _conformance(tmp_path)
    assert [p["name"] for p in report["profiles"]] == ["core"]


def test_a_promise_the_suite_cannot_check_makes_the_profile_partial(
    correct_url: str, tmp_path: Path
) -> None:
    spec = subset_spec()
    health = spec["paths"]["/health"]["get"]
    health["x-promises"].append({"id": "made-up", "kind": "echo", "statement": "Never checked."})
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    code = _check(correct_url, path, tmp_path, *QUICK, "--profile", "behaviour")
    behaviour = _profile(_conformance(tmp_path), "behaviour")
    assert code == 0  # partial is not a failure
    assert behaviour["result"] == "partial"
    assert behaviour["skipped_tests"] == ["health_status/made-up"]
    assert "no check" in behaviour["skip_reasons"]["health_status/made-up"]


def test_reproduction_replays_the_failure(subset_path: Path, tmp_path: Path) -> None:
    """The printed curl sequence, replayed, shows the broken promise again."""
    import shlex

    import httpx

    with _Server(build_app("ignores-max-length")) as url:
        _check(url, subset_path, tmp_path, *QUICK, "--profile", "behaviour")
        failure = next(
            f
            for f in _profile(_conformance(tmp_path), "behaviour")["failures"]
            if f["test"] == "analysis_summarize/max-length"
        )
        argv = shlex.split(failure["reproduce"].splitlines()[-1])
        body = json.loads(argv[argv.index("--data-raw") + 1])
        answer = httpx.post(argv[argv.index("-X") + 2], json=body).json()
    assert answer["word_count"] > body.get("max_length", 100)
