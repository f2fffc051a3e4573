"""Qdrant filters equivalent to the pgvector store's jsonb containment (``metadata @> f``)."""

from __future__ import annotations

from collections.abc import Mapping

from qdrant_client import models as qm

from backends.core.errors import InvalidInput
from backends.core.vectorstore.base import MetadataValue


def _path(key: str) -> str:
    # Quoted so a key containing dots is one key, not a nested path.
    if '"' in key:
        raise InvalidInput(f"filter key {key!r} may not contain a double quote")
    return f'metadata."{key}"'


def metadata_filter(filter: Mapping[str, MetadataValue]) -> qm.Filter:
    """Exact match on every key: strings/bools by value, numbers numerically, None as null."""
    must: list[qm.Condition] = []
    for key, value in filter.items():
        path = _path(key)
        if value is None:
            must.append(qm.IsNullCondition(is_null=qm.PayloadField(key=path)))
        elif isinstance(value, bool | str):
            must.append(qm.FieldCondition(key=path, match=qm.MatchValue(value=value)))
        else:
            # 1 and 1.0 are equal in jsonb: a closed range matches both, as there.
            number = float(value)
            must.append(qm.FieldCondition(key=path, range=qm.Range(gte=number, lte=number)))
    return qm.Filter(must=must)


def first_chunks() -> qm.Filter:
    """One point per document: whole documents (no chunk index) and chunk 0 of the others."""
    return qm.Filter(
        should=[
            qm.IsNullCondition(is_null=qm.PayloadField(key="chunk_index")),
            qm.FieldCondition(key="chunk_index", match=qm.MatchValue(value=0)),
        ]
    )
