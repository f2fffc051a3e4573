"""`contract check --read-only` (what switch-check runs against a candidate sharing the
primary's data): every phase and scenario, and not one request to an operation that writes.

A recording server in front of the behaviour server (a correct implementation of part of
the real contract, writing operations included) lists every request it got.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from contract.cli import main
from shared_schemas.operations import by_id
from tests.contract_cli.behaviour_server import build_app, subset_spec
from tests.contract_cli.conftest import _Server


class Recording:
    """Passes every request on and keeps its method and path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.requests: list[tuple[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.requests.append((scope["method"], scope["path"]))
        await self.app(scope, receive, send)


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, re.Pattern[str]]]:
    """(operationId, METHOD, path pattern) of each operation of the spec."""
    found = []
    for path, item in spec["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\{[^}/]+\\}", "[^/]+", path) + "$")
        for method, operation in item.items():
            found.append((operation["operationId"], method.upper(), pattern))
    return found


def _sent(requests: list[tuple[str, str]], method: str, pattern: re.Pattern[str]) -> int:
    return sum(1 for m, path in requests if m == method and pattern.match(path))


@pytest.fixture(scope="module")
def subset_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "openapi.json"
    path.write_text(json.dumps(subset_spec()))
    return path


def test_a_read_only_check_sends_no_write(
    subset_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recording = Recording(build_app())
    with _Server(recording) as url:  # type: ignore[arg-type]
        code = main(
            ["check", "--base-url", url, "--spec", str(subset_path), "--report", str(tmp_path),
             "--max-examples", "1", "--seed", "11", "--read-only"]
        )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    operations = _operations(subset_spec())
    writing = [(op_id, m, p) for op_id, m, p in operations if by_id()[op_id].writes]
    assert {op_id for op_id, _, _ in writing} == {
        "rag_index", "rag_index_document", "rag_delete_collection", "complexity_post_analyze",
    }  # fmt: skip
    sent = {op_id: _sent(recording.requests, m, p) for op_id, m, p in writing}
    assert sent == dict.fromkeys(sent, 0), sent
    # and the rest was exercised for real: every reading operation got requests
    reading = {op_id: _sent(recording.requests, m, p) for op_id, m, p in operations}
    assert all(reading[op_id] > 0 for op_id, _, _ in operations if op_id not in sent), reading
    said = next(line for line in out.splitlines() if line.startswith("read-only: not sent"))
    assert "POST /api/v1/rag/index," in said and "DELETE /api/v1/rag/collection/{name}" in said
    assert "read-only: no stateful phase" in out
    report = json.loads((tmp_path / "conformance-report.json").read_text())
    behaviour = next(p for p in report["profiles"] if p["name"] == "behaviour")
    reasons = behaviour["skip_reasons"]
    assert reasons["rag_index/indexed-is-searchable"].startswith("read-only run")
    calibrates = reasons["complexity_pre_estimate/post-analysis-calibrates"]
    assert "read-only run: complexity_post_analyze writes" in calibrates
    # a promise of a reading operation decided by a scenario was still checked
    checked = {t["name"] for t in behaviour["tests"] if t["checked"] > 0}
    assert "embeddings_batch/same-as-single" in checked
