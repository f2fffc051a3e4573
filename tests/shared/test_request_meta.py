"""One rule for request ids, logged paths and client addresses (gateway and backends)."""

from __future__ import annotations

import pytest

from shared_schemas import request_meta
from shared_schemas.operations import OPERATIONS


@pytest.mark.parametrize("value", ["abc", "a" * 128, "req-1_x.y:z", b"bytes-id"])
def test_valid_request_ids(value: str | bytes) -> None:
    assert request_meta.valid_request_id(value)


@pytest.mark.parametrize("value", ["", "a" * 129, "has space", "tab\t", "é", "nul\x00", b"\xff"])
def test_invalid_request_ids(value: str | bytes) -> None:
    assert not request_meta.valid_request_id(value)
    if isinstance(value, str):
        assert request_meta.request_id_from(value) != value


def test_a_new_request_id_is_valid_and_fresh() -> None:
    first, second = request_meta.new_request_id(), request_meta.new_request_id()
    assert request_meta.valid_request_id(first) and first != second


@pytest.mark.parametrize(
    ("forwarded", "peer", "expected"),
    [
        ("6.6.6.6, 127.0.0.1", "127.0.0.2", "127.0.0.1"),  # what the gateway saw, not the client
        ("203.0.113.7", "127.0.0.1", "203.0.113.7"),
        (None, "::1", "::1"),
        ("", "10.1.2.3", "10.1.2.3"),
        ("not-an-ip", "127.0.0.1", None),
        (None, None, None),
    ],
)
def test_client_ip_is_the_nearest_proxys_view(
    forwarded: str | None, peer: str | None, expected: str | None
) -> None:
    assert request_meta.client_ip(forwarded, peer) == expected


def test_health_operations_and_docs_are_unlogged() -> None:
    for operation in OPERATIONS:
        assert request_meta.is_logged(operation.path) is (operation.group != "health")
    assert not request_meta.is_logged("/openapi.json")
    assert not request_meta.is_logged("/admin/login/")


@pytest.mark.parametrize(
    ("presented", "secret", "expected"),
    [
        ("s3cret", "s3cret", True),
        ("s3cret", "other", False),
        (None, "s3cret", False),
        ("", "s3cret", False),
        ("", "", False),  # no secret configured: nothing is from the gateway
        ("anything", "", False),
        ("s3cr\xe9t", "s3cret", False),  # a latin-1 header value, not ASCII
    ],
)
def test_from_gateway(presented: str | None, secret: str, expected: bool) -> None:
    assert request_meta.from_gateway(presented, secret) is expected
