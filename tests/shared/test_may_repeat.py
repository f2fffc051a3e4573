"""Which requests the gateway may send twice when a backend closed the connection unanswered."""

from __future__ import annotations

import pytest

from shared_schemas.operations import OPERATIONS, may_repeat, operation_at


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/health", True),
        ("DELETE", "/api/v1/rag/collections/docs", True),  # idempotent by its method
        ("POST", "/api/v1/embeddings/generate", True),  # computes, writes nothing
        ("POST", "/api/v1/rag/index", False),  # writes: it may have run
        ("POST", "/api/v1/not-an-operation", False),  # unknown: assume it writes
    ],
)
def test_may_repeat(method: str, path: str, expected: bool) -> None:
    assert may_repeat(method, path) is expected


def test_every_post_without_parameters_follows_its_operation() -> None:
    posts = [op for op in OPERATIONS if op.method == "POST" and not op.path_params]
    assert any(op.writes for op in posts) and any(not op.writes for op in posts)
    for op in posts:
        assert operation_at(op.method, op.path) is op
        assert may_repeat(op.method, op.path) is (not op.writes)
