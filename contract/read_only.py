"""Which operations of a spec write: what a read-only run (``check --read-only``) never sends.

A run against a server that shares another's data (switch-check's candidate shares the
primary's database and vector store) must not change it: the generated cases, the
stateful phase and the scenarios skip every operation that writes. The facts are the
registry's (``Operation.writes``); an operation the registry does not know writes unless
its method is a reading one.
"""

from __future__ import annotations

from typing import Any

from shared_schemas.operations import by_id

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def writes(operation_id: str | None, method: str) -> bool:
    """Whether calling this operation may change stored data."""
    known = by_id().get(operation_id or "")
    if known is not None:
        return known.writes
    return method.upper() not in READ_METHODS


def writing_operations(raw_spec: dict[str, Any]) -> dict[str, str]:
    """The spec's operations that write: label ("POST /path") -> operationId (or the label)."""
    found: dict[str, str] = {}
    for path, item in (raw_spec.get("paths") or {}).items():
        for method, operation in (item or {}).items():
            if method.lower() not in HTTP_METHODS or not isinstance(operation, dict):
                continue
            op_id = operation.get("operationId")
            if writes(op_id, method):
                label = f"{method.upper()} {path}"
                found[label] = str(op_id or label)
    return found


def links_left(raw_spec: dict[str, Any]) -> bool:
    """Whether a link joins two operations that do not write (the stateful phase's steps)."""
    operations: dict[str, tuple[str, dict[str, Any]]] = {}
    for item in (raw_spec.get("paths") or {}).values():
        for method, operation in (item or {}).items():
            if method.lower() in HTTP_METHODS and isinstance(operation, dict):
                operations[str(operation.get("operationId"))] = (method, operation)
    for op_id, (method, operation) in operations.items():
        if writes(op_id, method):
            continue
        for response in (operation.get("responses") or {}).values():
            for link in ((response or {}).get("links") or {}).values():
                target = operations.get(str((link or {}).get("operationId")))
                if target is None or not writes(str(link.get("operationId")), target[0]):
                    return True  # an operationRef, or a target that only reads
    return False
