"""A declared refusal (`x-refusals`) of a schema-valid request passes the conformance check;
the same answer undeclared, or a refusal unlike the declared one, fails it."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.contract_cli.conftest import SPEC_PATH, _Server

ROOT = Path(__file__).resolve().parents[2]
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]
REFUSAL = {
    "status": 422,
    "code": "validation_error",
    "detail_type": "too_many",
    "when": "the quantity is over 50 (the stock)",
}


def _spec(tmp_path: Path, *, declared: bool) -> Path:
    """spec.json reduced to POST /items, with or without the refusal declared."""
    spec = json.loads(SPEC_PATH.read_text())
    create = copy.deepcopy(spec["paths"]["/items"]["post"])
    create["responses"]["200"].pop("links", None)
    if declared:
        create["x-refusals"] = [REFUSAL]
    spec["paths"] = {"/items": {"post": create}}
    path = tmp_path / ("declared.json" if declared else "undeclared.json")
    path.write_text(json.dumps(spec))
    return path


def _app(detail_type: str) -> Starlette:
    """POST /items validating like the spec, refusing a quantity over 50 (schema-valid)."""
    spec = json.loads(SPEC_PATH.read_text())
    validator = jsonschema_rs.validator_for(spec["components"]["schemas"]["ItemCreate"])

    def error(status: int, code: str, details: list[dict[str, Any]]) -> Response:
        body = {
            "error": {"code": code, "message": "refused", "details": details},
            "request_id": uuid.uuid4().hex,
        }
        headers = {"Allow": "POST"} if status == 405 else None
        return JSONResponse(body, status_code=status, headers=headers)

    async def create_item(request: Request) -> Response:
        if request.method != "POST":
            return error(405, "method_not_allowed", [])
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return error(415, "unsupported_media_type", [])
        try:
            payload = json.loads(await request.body())
        except ValueError:
            return error(400, "bad_request", [])
        problems = [
            {"loc": ["body"], "message": e.message, "type": "value_error"}
            for e in validator.iter_errors(payload)
        ]
        if problems:
            return error(422, "validation_error", problems)
        if payload["quantity"] > 50:
            detail = {"loc": ["body", "quantity"], "message": "out of stock", "type": detail_type}
            return error(422, "validation_error", [detail])
        return JSONResponse({"id": "i1", "name": payload["name"], "quantity": payload["quantity"]})

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error(exc.status_code, "method_not_allowed", [])

    routes = [Route("/items", create_item, methods=METHODS)]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})


def _check(url: str, spec: Path, report: Path) -> tuple[int, dict[str, Any], str]:
    done = subprocess.run(
        [sys.executable, "-m", "contract", "check", "--base-url", url, "--spec", str(spec),
         "--report", str(report), "--max-examples", "40", "--seed", "11",
         "--phases", "coverage,fuzzing", "--profile", "core", "--no-probes"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    data = json.loads((report / "contract-report.json").read_text())
    operation = next(op for op in data["operations"] if op["operation"] == "POST /items")
    return done.returncode, operation, done.stdout + done.stderr


@pytest.fixture(scope="module")
def refusing_url() -> Any:
    with _Server(_app("too_many")) as url:
        yield url


def test_a_declared_refusal_of_valid_data_passes(refusing_url: str, tmp_path: Path) -> None:
    code, operation, output = _check(refusing_url, _spec(tmp_path, declared=True), tmp_path)
    assert code == 0, output
    assert operation["passed"] is True
    assert operation["status_codes"].get("422", 0) > 0
    assert operation["status_codes"].get("200", 0) > 0


def test_the_same_refusal_undeclared_fails(refusing_url: str, tmp_path: Path) -> None:
    code, operation, output = _check(refusing_url, _spec(tmp_path, declared=False), tmp_path)
    assert code == 1, output
    assert {f["check"] for f in operation["failures"]} == {"positive_data_acceptance"}


def test_a_refusal_unlike_the_declared_one_fails(tmp_path: Path) -> None:
    with _Server(_app("other_reason")) as url:
        code, operation, output = _check(url, _spec(tmp_path, declared=True), tmp_path)
    assert code == 1, output
    checks = {f["check"] for f in operation["failures"]}
    assert checks == {"accepted_or_declared_refusal"}, output
