"""X-Shadow marks a request-log row (and makes it free) only when the gateway sent it."""

from __future__ import annotations

import pytest

from backends.core.metering.meter import Meter, MeterReading
from backends.core.metering.prices import CreditSettings
from backends.core.persistence.log_notes import LogNotes, RequestFacts, request_record
from shared_schemas import request_meta


@pytest.mark.parametrize(
    ("shadow_header", "from_gateway", "shadow"),
    [("1", True, True), ("1", False, False), (None, True, False), ("0", True, False)],
)
def test_shadow_is_trusted_only_from_the_gateway(
    shadow_header: str | None, from_gateway: bool, shadow: bool
) -> None:
    headers = {}
    if shadow_header is not None:
        headers["x-shadow"] = shadow_header
    notes = LogNotes(shadow=request_meta.is_shadow(from_gateway, headers))
    notes.reading = MeterReading(operation_id="analysis_sentiment")
    credits = notes.settle(Meter(CreditSettings()), 200)
    facts = RequestFacts(
        method="POST", path="/api/v1/analysis/sentiment", status=200, duration_ms=1.0,
        request_id="r1", headers=headers, peer="127.0.0.1", from_gateway=from_gateway,
    )  # fmt: skip
    record = request_record("fastapi", notes, facts)
    assert record.shadow is shadow
    assert record.credits_charged == credits
    assert (credits == 0) is shadow
