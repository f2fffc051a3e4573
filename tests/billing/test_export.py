"""The Stripe export sends each closed usage slice exactly once, across failures and runs.

Real Postgres (the session's, migrated); Stripe faked with respx at the HTTP layer, as
the SDK's HTTPX client reaches it. Each test bills its own organisations, so the usage
other tests leave in the shared tables stays unmapped and unsent.
"""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import psycopg
import pytest
import respx

from billing.__main__ import main
from billing.settings import BillingSettings
from billing.slices import UsageSlice, last_closed_day

METER_EVENTS = "https://api.stripe.com/v1/billing/meter_events"
KEY = "sk_test_h17m" + "x" * 24  # a fake key; the test greps every output for it
DAY = datetime.now(UTC).date() - timedelta(days=3)


def _event_json(form: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "object": "billing.meter_event",
        "event_name": form["event_name"][0],
        "identifier": form["identifier"][0],
        "payload": {
            "stripe_customer_id": form["payload[stripe_customer_id]"][0],
            "value": form["payload[value]"][0],
        },
        "timestamp": int(form["timestamp"][0]),
        "created": int(form["timestamp"][0]),
        "livemode": False,
    }


def _form(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(request.content.decode())


class FakeStripe:
    """Accepts meter events, except those it is told to fail once (500 or no connection)."""

    def __init__(self) -> None:
        self.accepted: list[dict[str, list[str]]] = []
        self.fail_once: dict[str, str] = {}  # identifier -> "500" | "connect"
        self.authorizations: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        form = _form(request)
        self.authorizations.add(request.headers.get("authorization", ""))
        identifier = form["identifier"][0]
        failure = self.fail_once.pop(identifier, None)
        if failure == "connect":
            raise httpx.ConnectError("connection refused", request=request)
        if failure == "500":
            error = {"error": {"type": "api_error", "message": "An unknown error occurred"}}
            return httpx.Response(500, json=error)
        self.accepted.append(form)
        return httpx.Response(200, json=_event_json(form))

    def identifiers(self) -> list[str]:
        return [form["identifier"][0] for form in self.accepted]


@pytest.fixture
def stripe_api() -> Iterator[FakeStripe]:
    fake = FakeStripe()  # assert_all_mocked: no request leaves the machine
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        router.post(METER_EVENTS).mock(side_effect=fake)
        yield fake


@pytest.fixture
def orgs(migrated_pg_url: str) -> Iterator[dict[str, str]]:
    """Two organisations with usage on DAY (and one on today, a day still running)."""
    run = uuid.uuid4().hex[:8]
    a, b = f"org-a-{run}", f"org-b-{run}"
    today = datetime.now(UTC).date()
    rows = [
        # two users and two backends of org a: one slice for its embeddings
        ("u1", a, DAY, "fastapi", "embeddings", 7),
        ("u2", a, DAY, "django", "embeddings", 5),
        ("u1", a, DAY, "fastapi", "rag", 3),
        ("u3", b, DAY, "fastapi", "analysis", 11),
        ("u3", b, DAY, "fastapi", "complexity", 0),  # nothing to bill
        ("u3", b, today, "fastapi", "analysis", 4),  # today is not closed
    ]
    with psycopg.connect(migrated_pg_url, autocommit=True) as conn:
        for user, org, day, service, category, credits in rows:
            conn.execute(
                "INSERT INTO ml_service_usage (user_id, organization_id, date, service_name, "
                "endpoint_category, total_requests, total_credits) VALUES (%s,%s,%s,%s,%s,1,%s)",
                (user, org, day, service, category, credits),
            )
    try:
        yield {a: f"cus_a_{run}", b: f"cus_b_{run}"}
    finally:
        with psycopg.connect(migrated_pg_url, autocommit=True) as conn:
            for table in ("ml_service_usage", "ml_billing_export"):
                conn.execute(f"DELETE FROM {table} WHERE organization_id = ANY(%s)", ([a, b],))


def _settings(pg_url: str, customers: dict[str, str]) -> BillingSettings:
    values: dict[str, Any] = {
        "DATABASE_URL": pg_url,
        "STRIPE_API_KEY": KEY,
        "STRIPE_MAX_NETWORK_RETRIES": 0,
        "customers": customers,
        "meter_event_name": "ml_api_credits",
    }
    return BillingSettings(_env_file=None, **values)  # type: ignore[call-arg]


def _export(pg_url: str, customers: dict[str, str], *extra: str) -> tuple[int, str]:
    out = io.StringIO()
    argv = ["export", "--since", str(DAY), *extra]
    code = main(argv, settings=_settings(pg_url, customers), out=out)
    return code, out.getvalue()


def _expected(customers: dict[str, str]) -> dict[str, tuple[str, str]]:
    """identifier -> (customer, value) of the three billable slices."""
    a, b = sorted(customers)
    slices = [
        (UsageSlice(a, DAY, "embeddings", 12), a),
        (UsageSlice(a, DAY, "rag", 3), a),
        (UsageSlice(b, DAY, "analysis", 11), b),
    ]
    return {s.identifier: (customers[org], str(s.credits)) for s, org in slices}


def _stored(pg_url: str, customers: dict[str, str]) -> dict[str, tuple[str, int]]:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT identifier, state, credits FROM ml_billing_export "
            "WHERE organization_id = ANY(%s)",
            (list(customers),),
        ).fetchall()
    return {identifier: (state, credits) for identifier, state, credits in rows}


@pytest.mark.parametrize("failure", ["500", "connect"])
def test_two_runs_around_a_failure_send_each_slice_once(
    stripe_api: FakeStripe, orgs: dict[str, str], migrated_pg_url: str, failure: str
) -> None:
    expected = _expected(orgs)
    failing = sorted(expected)[1]
    stripe_api.fail_once[failing] = failure

    code, first = _export(migrated_pg_url, orgs)
    assert code == 1, first
    assert sorted(stripe_api.identifiers()) == sorted(set(expected) - {failing})
    stored = _stored(migrated_pg_url, orgs)
    assert {i for i, (state, _) in stored.items() if state == "sent"} == set(expected) - {failing}
    assert stored[failing][0] == "pending"  # recorded before the attempt, value fixed

    code, second = _export(migrated_pg_url, orgs)
    assert code == 0, second
    assert sorted(stripe_api.identifiers()) == sorted(expected)  # each exactly once
    sent = {
        form["identifier"][0]: (form["payload[stripe_customer_id]"][0], form["payload[value]"][0])
        for form in stripe_api.accepted
    }
    assert sent == expected
    assert all(form["event_name"] == ["ml_api_credits"] for form in stripe_api.accepted)

    code, third = _export(migrated_pg_url, orgs)
    assert code == 0
    assert len(stripe_api.accepted) == 3, third
    assert "already sent 3" in third


def test_a_day_still_running_is_not_billed(
    stripe_api: FakeStripe, orgs: dict[str, str], migrated_pg_url: str
) -> None:
    today = datetime.now(UTC).date()
    code, out = _export(migrated_pg_url, orgs, "--until", str(today))
    assert code == 0, out
    assert "is not closed yet" in out
    days = {form["timestamp"][0] for form in stripe_api.accepted}
    assert all(datetime.fromtimestamp(int(t), UTC).date() == DAY for t in days)
    assert len(stripe_api.accepted) == 3


def test_the_last_closed_day_waits_for_the_settling_time() -> None:
    just_after_midnight = datetime(2026, 12, 2, 0, 30, tzinfo=UTC)
    assert last_closed_day(just_after_midnight, 60) == date(2026, 11, 30)
    assert last_closed_day(just_after_midnight, 0) == date(2026, 12, 1)


def test_dry_run_sends_nothing_and_prints_what_it_would(
    stripe_api: FakeStripe, orgs: dict[str, str], migrated_pg_url: str
) -> None:
    code, out = _export(migrated_pg_url, orgs, "--dry-run")
    assert code == 0, out
    assert stripe_api.accepted == []
    assert _stored(migrated_pg_url, orgs) == {}
    for identifier, (customer, value) in _expected(orgs).items():
        line = next(line for line in out.splitlines() if identifier in line)
        assert line.startswith("would send ")
        assert f" {value} credits -> {customer} " in line


def test_an_unmapped_organisation_waits(
    stripe_api: FakeStripe, orgs: dict[str, str], migrated_pg_url: str
) -> None:
    a, b = sorted(orgs)
    code, out = _export(migrated_pg_url, {a: orgs[a]})
    assert code == 0, out
    assert f"no Stripe customer in BILLING_CUSTOMERS for: {b}" in out
    assert len(stripe_api.accepted) == 2
    code, out = _export(migrated_pg_url, orgs)  # mapped now: its slice goes
    assert len(stripe_api.accepted) == 3


def test_the_key_never_appears_in_output_logs_rows_or_errors(
    orgs: dict[str, str], migrated_pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    authorizations: list[str] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        authorizations.append(request.headers["authorization"])
        # an error that echoes the key: whatever Stripe says is printed redacted
        error = {"error": {"type": "invalid_request_error", "message": f"bad key {KEY}"}}
        return httpx.Response(401, json=error)

    with respx.mock(assert_all_mocked=True) as router:
        router.post(METER_EVENTS).mock(side_effect=refuse)
        code, out = _export(migrated_pg_url, orgs)
    assert code == 1
    assert authorizations and all(a == f"Bearer {KEY}" for a in authorizations)  # it was used
    assert "failed " in out and "[redacted]" in out
    assert KEY not in out
    assert KEY not in caplog.text
    assert KEY not in repr(_settings(migrated_pg_url, orgs))
    with psycopg.connect(migrated_pg_url) as conn:
        dump = conn.execute("SELECT row_to_json(e)::text FROM ml_billing_export e").fetchall()
    assert not any(KEY in row[0] for row in dump)
