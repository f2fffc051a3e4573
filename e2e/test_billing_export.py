"""Metered traffic on both backends becomes Stripe meter events: one per slice, once.

Two organisations call the backends (attributed as the gateway attributes them, with
the gateway secret). The day is then treated as closed (the export runs "tomorrow"),
and the events sent must carry exactly the credits the backends answered with, summed
per organisation and category. Stripe is faked with respx at the HTTP layer.
"""

from __future__ import annotations

import io
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import psycopg
import respx

from billing.__main__ import main
from billing.settings import BillingSettings
from billing.slices import UsageSlice
from e2e.conftest import Backends

METER_EVENTS = "https://api.stripe.com/v1/billing/meter_events"


def _accept(sent: list[dict[str, list[str]]]) -> Callable[[httpx.Request], httpx.Response]:
    def accept(request: httpx.Request) -> httpx.Response:
        form = parse_qs(request.content.decode())
        sent.append(form)
        return httpx.Response(200, json={"object": "billing.meter_event", "livemode": False})

    return accept


def test_traffic_is_billed_once_per_slice(backends: Backends, migrated_pg_url: str) -> None:
    run = uuid.uuid4().hex[:8]
    orgs = {f"bill-a-{run}": f"cus_a_{run}", f"bill-b-{run}": f"cus_b_{run}"}
    secret = backends.env["ML_SERVICE_GATEWAY_SECRET"]
    answered: dict[tuple[str, str], int] = defaultdict(int)
    request_ids: list[str] = []
    for org in sorted(orgs):
        for backend, service in sorted(backends.services.items()):
            tag = f"{org} on {backend}"  # no answer is another's cache hit
            calls = [
                (
                    "embeddings",
                    "/api/v1/embeddings/batch",
                    {"texts": [f"{tag} {i}" for i in range(21)]},
                ),
                ("analysis", "/api/v1/analysis/sentiment", {"text": f"{tag}: a fine day"}),
                ("analysis", "/api/v1/analysis/keywords", {"text": f"{tag}: meters and usage"}),
            ]
            headers = {"X-Organization-ID": org, "x-gateway-secret": secret}
            with httpx.Client(base_url=service.base_url, headers=headers, timeout=60) as client:
                for category, path, body in calls:
                    request_ids.append(rid := f"bill-{run}-{len(request_ids)}")
                    response = client.post(path, json=body, headers={"X-Request-ID": rid})
                    assert response.status_code == 200, response.text
                    answered[org, category] += int(response.headers["x-credits-charged"])

    today = datetime.now(UTC).date()
    with psycopg.connect(migrated_pg_url) as conn:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # rows are written in batches after the answer
            (logged,) = conn.execute(
                "SELECT count(*) FROM ml_service_requests WHERE request_id = ANY(%s)",
                (request_ids,),
            ).fetchone() or (0,)
            if logged == len(request_ids):
                break
            time.sleep(0.2)
    assert logged == len(request_ids)

    sent: list[dict[str, list[str]]] = []
    values: dict[str, Any] = {
        "DATABASE_URL": migrated_pg_url,
        "STRIPE_API_KEY": "sk_test_e2e",
        "customers": orgs,
    }
    settings = BillingSettings(_env_file=None, **values)  # type: ignore[call-arg]
    tomorrow = datetime.combine(today + timedelta(days=1), datetime.min.time(), UTC)
    with respx.mock(assert_all_mocked=True) as router:
        router.post(METER_EVENTS).mock(side_effect=_accept(sent))
        for _ in range(2):  # the second run finds everything sent
            out = io.StringIO()
            code = main(
                ["export", "--since", str(today)],
                settings=settings,
                now=tomorrow + timedelta(hours=2),
                out=out,
            )
            assert code == 0, out.getvalue()

    ours = [form for form in sent if form["payload[stripe_customer_id]"][0] in orgs.values()]
    billed = {
        form["identifier"][0]: (
            form["payload[stripe_customer_id]"][0],
            int(form["payload[value]"][0]),
        )
        for form in ours
    }
    assert len(ours) == len(billed) == 4  # 2 organisations x 2 categories, each once
    expected = {
        UsageSlice(org, today, category, credits).identifier: (orgs[org], credits)
        for (org, category), credits in answered.items()
    }
    assert billed == expected
