"""Build contract/openapi.json (OpenAPI 3.1) from shared_schemas; `--check` finds a stale file."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from shared_schemas import API_TITLE, API_VERSION
from shared_schemas import generation as gen
from shared_schemas.common import COLLECTION_PATTERN
from shared_schemas.errors import ErrorResponse
from shared_schemas.operations import OPERATIONS, TAGS, Operation
from shared_schemas.promises import Promise, promises_for

OUTPUT = Path(__file__).with_name("openapi.json")
REF_TEMPLATE = "#/components/schemas/{model}"
ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}

DESCRIPTION = (
    "One ML HTTP API (embeddings, RAG, text analysis, task complexity, transcription) served "
    "identically by every backend. Every success is a 200; every failure has the ErrorResponse "
    "body. Generated from shared_schemas by contract/generate.py: do not edit by hand."
)

ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Malformed body (not JSON, broken multipart).",
    404: "The collection does not exist.",
    413: "Body or audio file too large.",
    415: "Unsupported media type.",
    422: "Validation error: the request does not match the schema.",
    429: "Rate limited; retry after Retry-After seconds.",
    502: "The hosted provider failed.",
    503: "Service unavailable: a provider or store this request needs is missing or down.",
    504: "The hosted provider timed out.",
}
READY_503 = "Not ready: the details list the failed checks."

REQUEST_ID_HEADER: dict[str, Any] = {
    "description": "Id of the request: the caller's X-Request-ID when it is 1..128 visible "
    "ASCII characters, else a new one.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 128},
}
REQUEST_ID_REF = {"X-Request-ID": {"$ref": "#/components/headers/RequestId"}}

PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "name": {
        "description": "Collection name.",
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": 63,
            "pattern": COLLECTION_PATTERN,
        },
    }
}

_COLLECTION = "$response.body#/collection"
# Stateful flows (schemathesis follows them): an indexed collection can be searched, queried
# and deleted. Body links merge into the generated body of the target operation.
LINKS: dict[str, dict[str, dict[str, Any]]] = {
    "rag_index": {
        "SearchIndexedCollection": {
            "operationId": "rag_search",
            "requestBody": {"collection": _COLLECTION},
            "description": "Search the collection the documents went into.",
        },
        "QueryIndexedCollection": {
            "operationId": "rag_query",
            "requestBody": {"collection": _COLLECTION},
            "description": "Ask a question over the collection the documents went into.",
        },
        "DeleteIndexedCollection": {
            "operationId": "rag_delete_collection",
            "parameters": {"path.name": _COLLECTION},
            "description": "Delete the collection the documents went into.",
        },
    },
    "rag_index_document": {
        "SearchIndexedDocument": {
            "operationId": "rag_search",
            "requestBody": {"collection": _COLLECTION},
            "description": "Search the collection the chunks went into.",
        },
    },
}

_TEXT_SCHEMA: dict[str, Any] = {"type": "string"}
_BINARY_SCHEMA: dict[str, Any] = {"type": "string", "format": "binary"}


def _schema_inputs() -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    """Every model the spec names: requests in validation mode, responses in serialization."""
    inputs: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {}
    for op in OPERATIONS:
        if op.request_model is not None:
            inputs[(op.request_model, "validation")] = None
        for model in (op.response_model, *op.alternative_response_models):
            if model is not None:
                inputs[(model, "serialization")] = None
    inputs[(ErrorResponse, "serialization")] = None
    inputs[(gen.GenerateToken, "serialization")] = None  # named by the event-stream description
    return list(inputs)


def _first_line(model: type[BaseModel] | None, fallback: str) -> str:
    doc = (model.__doc__ or "").strip() if model is not None else ""
    return doc.splitlines()[0] if doc else fallback


def _success(op: Operation, refs: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    content: dict[str, Any] = {}
    if op.response_model is not None:
        models = (op.response_model, *op.alternative_response_models)
        schemas = [refs[(m, "serialization")] for m in models]
        schema = schemas[0] if len(schemas) == 1 else {"oneOf": schemas}
        content["application/json"] = {"schema": schema}
    for media_type in op.extra_response_content_types:
        binary = not media_type.startswith("text/") and media_type != "application/x-subrip"
        content[media_type] = {"schema": dict(_BINARY_SCHEMA if binary else _TEXT_SCHEMA)}
        if media_type == gen.EVENT_STREAM_MEDIA_TYPE:
            content[media_type] = {"schema": _event_schema(refs)}
    response: dict[str, Any] = {
        "description": _first_line(op.response_model, op.summary),
        "headers": dict(REQUEST_ID_REF),
        "content": content,
    }
    if op.operation_id in LINKS:
        response["links"] = LINKS[op.operation_id]
    return response


def _event_schema(refs: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    """One server-sent event of a generation stream, as OpenAPI 3.1 tools read an event
    stream's schema (OpenAPI 3.2 calls it itemSchema): its name and its JSON data."""
    events = [
        {
            "type": "object",
            "required": ["event", "data"],
            "properties": {
                "event": {"const": name},
                "data": {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": refs[(model, "serialization")],
                },
            },
        }
        for name, model in gen.STREAM_EVENTS.items()
    ]
    return {"description": gen.EVENT_STREAM_DESCRIPTION, "oneOf": events}


def _error(op: Operation, status: int) -> dict[str, Any]:
    description = READY_503 if (op.operation_id, status) == ("health_ready", 503) else None
    description = description or ERROR_DESCRIPTIONS[status]
    refused = [r for r in op.refusals if r.status == status]
    if refused:
        description += " Also for a schema-valid request (`x-refusals`): " + "; ".join(
            f"code `{r.code}` with detail type `{r.detail_type}` when {r.when}" for r in refused
        )
        description += "."
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": dict(ERROR_REF)}},
    }
    response["headers"] = dict(REQUEST_ID_REF)
    if status == 429:
        response["headers"]["Retry-After"] = {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer", "minimum": 0},
        }
    return response


def _operation(op: Operation, refs: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    promises = promises_for(op.operation_id)
    intro = _first_line(op.request_model, op.summary) if op.request_model else op.summary
    spec: dict[str, Any] = {
        "operationId": op.operation_id,
        "tags": [op.group],
        "summary": op.summary,
        "description": _with_promises(intro, promises),
        "responses": {"200": _success(op, refs)},
        "x-promises": [promise.as_extension() for promise in promises],
    }
    if op.refusals:
        spec["x-refusals"] = [refusal.as_extension() for refusal in op.refusals]
    if op.path_params:
        spec["parameters"] = [
            {"name": name, "in": "path", "required": True, **PATH_PARAMETERS[name]}
            for name in op.path_params
        ]
    if op.request_model is not None:
        assert op.request_content_type is not None, op.operation_id
        schema = refs[(op.request_model, "validation")]
        spec["requestBody"] = {
            "required": True,
            "content": {op.request_content_type: {"schema": schema}},
        }
    for status in op.error_statuses:
        spec["responses"][str(status)] = _error(op, status)
    return spec


def _with_promises(intro: str, promises: Sequence[Promise]) -> str:
    """The description people read: the intro, then the promises the behaviour profile checks."""
    lines = [f"- `{p.id}` ({p.kind}): {p.statement}" for p in promises]
    return f"{intro}\n\nPromises (checked by the behaviour profile; `x-promises`):\n" + "\n".join(
        lines
    )


def build_openapi() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document as a dict."""
    refs, top = models_json_schema(_schema_inputs(), ref_template=REF_TEMPLATE)
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": API_TITLE,
            "version": API_VERSION,
            "description": DESCRIPTION,
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "tags": [{"name": name, "description": text} for name, text in TAGS.items()],
        "paths": paths,
        "components": {
            "schemas": top.get("$defs", {}),
            "headers": {"RequestId": REQUEST_ID_HEADER},
        },
    }


def render() -> str:
    """The document as committed: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(build_openapi(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Write the spec (default contract/openapi.json); with --check, exit 1 if it is stale."""
    parser = argparse.ArgumentParser(prog="contract generate", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the file is out of date")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="where the spec lives")
    args = parser.parse_args(argv)
    text = render()
    path: Path = args.output
    if args.check:
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current != text:
            print(f"{path} is stale: run `make contract` and commit the result.", file=sys.stderr)
            return 1
        print(f"{path} is up to date.")
        return 0
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path} ({len(OPERATIONS)} operations)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
