"""The committed OpenAPI document: fresh, valid, loadable, and the 32 endpoints planned."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from contract import generate
from shared_schemas.common import COLLECTION_PATTERN
from shared_schemas.operations import OPERATIONS

SPEC_PATH = Path(generate.__file__).with_name("openapi.json")

# The 32 endpoints of the original plan (the contract), as method and path.
DESIGN_TABLE = {
    ("GET", "/health"), ("GET", "/ready"), ("GET", "/live"),
    ("POST", "/api/v1/embeddings/generate"), ("POST", "/api/v1/embeddings/batch"),
    ("POST", "/api/v1/embeddings/similarity"), ("GET", "/api/v1/embeddings/models"),
    ("POST", "/api/v1/rag/index"), ("POST", "/api/v1/rag/index-document"),
    ("POST", "/api/v1/rag/search"), ("POST", "/api/v1/rag/query"),
    ("GET", "/api/v1/rag/collections"), ("DELETE", "/api/v1/rag/collection/{name}"),
    ("GET", "/api/v1/rag/stats"),
    ("POST", "/api/v1/analysis/analyze"), ("POST", "/api/v1/analysis/generate"),
    ("POST", "/api/v1/analysis/classify"), ("POST", "/api/v1/analysis/summarize"),
    ("POST", "/api/v1/analysis/sentiment"), ("POST", "/api/v1/analysis/keywords"),
    ("POST", "/api/v1/complexity/pre-estimate"), ("POST", "/api/v1/complexity/post-analyze"),
    ("GET", "/api/v1/complexity/scale"), ("POST", "/api/v1/complexity/calculate-adjustment"),
    ("GET", "/api/v1/complexity/health"),
    ("POST", "/api/v1/transcription/transcribe"),
    ("POST", "/api/v1/transcription/transcribe-base64"),
    ("POST", "/api/v1/transcription/convert"), ("POST", "/api/v1/transcription/estimate-cost"),
    ("GET", "/api/v1/transcription/formats"), ("GET", "/api/v1/transcription/languages"),
    ("GET", "/api/v1/transcription/health"),
}  # fmt: skip


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return generate.build_openapi()


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
    ]


def test_committed_spec_is_fresh() -> None:
    committed = SPEC_PATH.read_text(encoding="utf-8") if SPEC_PATH.is_file() else ""
    assert committed == generate.render(), (
        "contract/openapi.json is stale: run `make contract` and commit the result"
    )


def test_render_is_deterministic_and_sorted() -> None:
    text = generate.render()
    assert text == generate.render()
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_check_mode_detects_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "openapi.json"
    assert generate.main(["--check", "--output", str(target)]) == 1
    assert "make contract" in capsys.readouterr().err
    assert generate.main(["--output", str(target)]) == 0
    assert generate.main(["--check", "--output", str(target)]) == 0
    target.write_text(target.read_text() + " ")
    assert generate.main(["--check", "--output", str(target)]) == 1


def test_document_is_valid_openapi_31(spec: dict[str, Any]) -> None:
    from openapi_spec_validator import validate

    assert spec["openapi"] == "3.1.0"
    assert spec["info"]["title"] == "ML API"
    validate(spec)


def test_schemathesis_loads_every_operation() -> None:
    import schemathesis

    schema = schemathesis.openapi.from_path(str(SPEC_PATH))
    results = list(schema.get_all_operations())
    assert all(hasattr(result, "ok") for result in results), "schemathesis rejected an operation"
    labels = {result.ok().label for result in results}  # type: ignore[union-attr]
    assert labels == {f"{method} {path}" for method, path in DESIGN_TABLE}


def test_exactly_the_32_endpoints_of_the_design(spec: dict[str, Any]) -> None:
    found = {(method, path) for method, path, _ in _operations(spec)}
    assert len(OPERATIONS) == 32
    assert found == DESIGN_TABLE
    assert {(op.method, op.path) for op in OPERATIONS} == DESIGN_TABLE


def test_operation_ids_are_unique_snake_case(spec: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in _operations(spec)]
    assert len(set(ids)) == 32
    assert all(re.fullmatch(r"[a-z]+(_[a-z0-9]+)*", op_id) for op_id in ids)
    assert "embeddings_generate" in ids and "rag_delete_collection" in ids
    tags = {tag["name"] for tag in spec["tags"]}
    assert all(set(op["tags"]) <= tags for _, _, op in _operations(spec))


def test_every_error_response_uses_the_error_shape(spec: dict[str, Any]) -> None:
    for method, path, op in _operations(spec):
        statuses = set(op["responses"])
        assert "default" not in statuses and "500" not in statuses, (method, path)
        assert "200" in statuses and "429" in statuses, (method, path)
        for status, response in op["responses"].items():
            if int(status) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (path, status)


def test_documented_statuses_follow_the_rules(spec: dict[str, Any]) -> None:
    for method, path, op in _operations(spec):
        statuses = {int(s) for s in op["responses"]}
        if "requestBody" in op or "parameters" in op:
            assert 422 in statuses, (method, path)
        if "requestBody" in op:
            assert {400, 413, 415} <= statuses, (method, path)
    assert 503 in {int(s) for s in spec["paths"]["/ready"]["get"]["responses"]}
    for path in ("/api/v1/rag/search", "/api/v1/rag/query"):
        assert "404" in spec["paths"][path]["post"]["responses"]
    assert "404" in spec["paths"]["/api/v1/rag/collection/{name}"]["delete"]["responses"]


def test_delete_collection_path_parameter(spec: dict[str, Any]) -> None:
    (param,) = spec["paths"]["/api/v1/rag/collection/{name}"]["delete"]["parameters"]
    assert param["in"] == "path" and param["required"] is True and param["name"] == "name"
    assert param["schema"]["pattern"] == COLLECTION_PATTERN


def test_request_bodies_and_content_types(spec: dict[str, Any]) -> None:
    paths = spec["paths"]
    transcribe = paths["/api/v1/transcription/transcribe"]["post"]
    form = transcribe["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form == {"$ref": "#/components/schemas/TranscribeForm"}
    file_field = spec["components"]["schemas"]["TranscribeForm"]["properties"]["file"]
    assert file_field["format"] == "binary"
    ok = transcribe["responses"]["200"]["content"]
    assert set(ok) == {"application/json", "text/plain", "text/vtt", "application/x-subrip"}
    assert len(ok["application/json"]["schema"]["oneOf"]) == 2
    convert = paths["/api/v1/transcription/convert"]["post"]["responses"]["200"]["content"]
    assert "audio/mpeg" in convert and "application/json" not in convert
    for method, path, op in _operations(spec):
        if method == "POST":
            assert op["requestBody"]["required"] is True, path


def test_generate_documents_the_token_stream(spec: dict[str, Any]) -> None:
    generate = spec["paths"]["/api/v1/analysis/generate"]["post"]
    request = spec["components"]["schemas"]["GenerateRequest"]["properties"]["stream"]
    assert request["type"] == "boolean" and request["default"] is False
    ok = generate["responses"]["200"]["content"]
    assert set(ok) == {"application/json", "text/event-stream"}
    events = ok["text/event-stream"]["schema"]  # one event (OpenAPI 3.1: no itemSchema)
    for named in ("event: token", "event: done", "event: error", "GenerateToken"):
        assert named in events["description"]
    data = {
        event["properties"]["event"]["const"]: event["properties"]["data"]
        for event in events["oneOf"]
    }
    assert {name: d["contentSchema"]["$ref"].rsplit("/", 1)[1] for name, d in data.items()} == {
        "token": "GenerateToken",
        "done": "GenerateResponse",
        "error": "ErrorResponse",
    }
    assert all(d["contentMediaType"] == "application/json" for d in data.values())


def test_stateful_links(spec: dict[str, Any]) -> None:
    ids = {op["operationId"] for _, _, op in _operations(spec)}
    index = spec["paths"]["/api/v1/rag/index"]["post"]["responses"]["200"]["links"]
    targets = {link["operationId"] for link in index.values()}
    assert targets == {"rag_search", "rag_query", "rag_delete_collection"}
    delete = next(v for v in index.values() if v["operationId"] == "rag_delete_collection")
    assert delete["parameters"] == {"path.name": "$response.body#/collection"}
    doc = spec["paths"]["/api/v1/rag/index-document"]["post"]["responses"]["200"]["links"]
    assert {link["operationId"] for link in doc.values()} == {"rag_search"}
    for links in (index, doc):
        assert all(link["operationId"] in ids for link in links.values())


def test_generation_declares_the_context_length_refusal(spec: dict[str, Any]) -> None:
    """The 422 a schema-valid prompt gets when it leaves no room in the local model's context
    is declared (x-refusals and the 422's description) on exactly the generating operations,
    and the backends' answer is that refusal (the conformance check accepts only it)."""
    from backends.core.llm.context import context_length_details
    from contract.checks import declared_refusal
    from shared_schemas.errors import error_payload

    declaring = {op["operationId"]: op for _, _, op in _operations(spec) if op.get("x-refusals")}
    assert set(declaring) == {"analysis_generate", "rag_query"}
    body = json.dumps(
        error_payload(422, "too long", "r1", details=context_length_details("prompt"))
    ).encode()
    for op in declaring.values():
        (refusal,) = op["x-refusals"]
        assert refusal["status"] == 422 and refusal["detail_type"] == "context_length"
        assert "context_length" in op["responses"]["422"]["description"]
        assert declared_refusal(op["x-refusals"], 422, body) == refusal
        assert declared_refusal(op["x-refusals"], 400, body) is None
        other = body.replace(b'"context_length"', b'"string_too_long"')
        assert declared_refusal(op["x-refusals"], 422, other) is None
