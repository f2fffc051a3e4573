"""The promises in shared_schemas/promises.py reach the spec, and the suite checks each one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import pytest

from contract import behaviour, scenarios
from shared_schemas.operations import OPERATIONS, by_id
from shared_schemas.promises import PROMISES, PromiseKind, promises_for

SPEC = json.loads((Path(__file__).resolve().parents[2] / "contract" / "openapi.json").read_text())


def _spec_operation(operation_id: str) -> dict[str, Any]:
    op = by_id()[operation_id]
    operation: dict[str, Any] = SPEC["paths"][op.path][op.method.lower()]
    return operation


def test_promises_are_keyed_by_real_operations() -> None:
    assert set(PROMISES) <= set(by_id())


@pytest.mark.parametrize("operation_id", sorted(by_id()))
def test_spec_carries_each_promise_as_extension_and_text(operation_id: str) -> None:
    operation = _spec_operation(operation_id)
    promises = promises_for(operation_id)
    assert operation["x-promises"] == [p.as_extension() for p in promises]
    ids = [p.id for p in promises]
    assert len(ids) == len(set(ids))
    for promise in promises:
        assert promise.kind in get_args(PromiseKind)
        assert f"`{promise.id}` ({promise.kind}): {promise.statement}" in operation["description"]


@pytest.mark.parametrize(
    "name",
    sorted(f"{op.operation_id}/{p.id}" for op in OPERATIONS for p in promises_for(op.operation_id)),
)
def test_every_promise_has_a_check(name: str) -> None:
    assert behaviour.known(name) or name in scenarios.covered_promises()


def test_every_response_documents_the_request_id_header() -> None:
    header = SPEC["components"]["headers"]["RequestId"]
    assert header["schema"]["maxLength"] == 128
    for item in SPEC["paths"].values():
        for operation in item.values():
            for response in operation["responses"].values():
                assert response["headers"]["X-Request-ID"] == {
                    "$ref": "#/components/headers/RequestId"
                }


def test_every_kind_of_promise_is_made() -> None:
    kinds = {p.kind for op in OPERATIONS for p in promises_for(op.operation_id)}
    assert kinds == set(get_args(PromiseKind))
