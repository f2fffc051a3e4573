"""X-Shadow marks a request-log row only when the gateway sent it (its secret alongside)."""

from __future__ import annotations

import pytest

from backends.core.persistence.log_notes import LogNotes, RequestFacts, request_record


@pytest.mark.parametrize(
    ("shadow_header", "from_gateway", "shadow"),
    [("1", True, True), ("1", False, False), (None, True, False), ("0", True, False)],
)
def test_shadow_is_trusted_only_from_the_gateway(
    shadow_header: str | None, from_gateway: bool, shadow: bool
) -> None:
    headers = {"x-credits-charged": "7"}
    if shadow_header is not None:
        headers["x-shadow"] = shadow_header
    facts = RequestFacts(
        method="POST", path="/api/v1/analysis/sentiment", status=200, duration_ms=1.0,
        request_id="r1", headers=headers, peer="127.0.0.1", from_gateway=from_gateway,
    )  # fmt: skip
    record = request_record("fastapi", LogNotes(), facts)
    assert record.shadow is shadow
    assert record.credits_charged == (0 if shadow else 7)
