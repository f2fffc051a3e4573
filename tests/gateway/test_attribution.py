"""The gateway secret and who-called: a client can forge neither through the gateway."""

from __future__ import annotations

import pytest

from gateway.auth import key_id
from tests.gateway.conftest import make_settings, run_gateway
from tests.gateway.upstreams import ThreadServer

FORGED = {
    "X-Gateway-Secret": "forged-secret",
    "X-User-ID": "forged-user",
    "X-Organization-ID": "forged-org",
    "X-API-Key-ID": "forged-key",
    "X-Credits-Charged": "999999",
}


@pytest.mark.parametrize("secret", ["", "the-real-gateway-secret"])
def test_client_copies_are_dropped_and_the_secret_added(fast: ThreadServer, secret: str) -> None:
    settings = make_settings({"fast": fast.url}, "fast", gateway_secret=secret)
    with run_gateway(settings) as running:
        seen = running.client.get("/api/v1/rag/stats", headers=FORGED).json()["headers"]
    assert seen.get("x-gateway-secret") == (secret or None)
    assert {"x-user-id", "x-organization-id", "x-api-key-id", "x-credits-charged"}.isdisjoint(seen)


def test_a_static_key_is_attributed_by_its_id(fast: ThreadServer) -> None:
    settings = make_settings(
        {"fast": fast.url}, "fast", api_keys="static-key-one", gateway_secret="s3cret"
    )
    with run_gateway(settings) as running:
        seen = running.client.get(
            "/api/v1/rag/stats", headers={**FORGED, "X-API-Key": "static-key-one"}
        ).json()["headers"]
    assert seen["x-gateway-secret"] == "s3cret"
    assert seen["x-api-key-id"] == key_id("static-key-one")
    assert "static-key-one" not in str(seen)
    # a static key names no user or organisation: the client's copies are gone, none added
    assert {"x-user-id", "x-organization-id"}.isdisjoint(seen)


def test_the_secret_must_be_visible_ascii() -> None:
    with pytest.raises(ValueError, match="visible ASCII"):
        make_settings({"fast": "http://127.0.0.1:1"}, "fast", gateway_secret="has space")
