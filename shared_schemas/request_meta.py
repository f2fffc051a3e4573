"""What a request says about itself, read by one rule at the gateway and in every backend.

The request id (``X-Request-ID``), which paths leave no request-log row, the attribution
headers (honoured only from the gateway, see ``from_gateway``) and the client address.
The gateway imports this module (it depends on the contract, never on the engine), so an
id the gateway accepts is one the backends accept.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping
from functools import lru_cache

from shared_schemas import fresh_ids
from shared_schemas.operations import OPERATIONS

REQUEST_ID_HEADER = "x-request-id"
FORWARDED_FOR_HEADER = "x-forwarded-for"
USER_ID_HEADER = "x-user-id"
ORGANIZATION_ID_HEADER = "x-organization-id"
API_KEY_ID_HEADER = "x-api-key-id"
# A response header: the credits the backend charged (a request's copy is never read).
CREDITS_HEADER = "x-credits-charged"
# A copy of a live request the gateway mirrored to a candidate backend ("1"): its log row
# is marked shadow and it is charged nothing (trusted only next to the gateway secret).
SHADOW_HEADER = "x-shadow"
# Proves a request came through the gateway: its value is ML_SERVICE_GATEWAY_SECRET.
GATEWAY_SECRET_HEADER = "x-gateway-secret"
# Who called: set by the gateway from the API key, trusted by a backend only next to the
# gateway secret (anyone reaching a backend directly could write them).
ATTRIBUTION_HEADERS = (USER_ID_HEADER, ORGANIZATION_ID_HEADER, API_KEY_ID_HEADER)
# What the gateway drops from every client request and then sets itself.
GATEWAY_SET_HEADERS = (GATEWAY_SECRET_HEADER, *ATTRIBUTION_HEADERS, SHADOW_HEADER)
USER_AGENT_HEADER = "user-agent"
MAX_REQUEST_ID = 128  # ErrorResponse.request_id's maxLength
# What a request-log row records of a request's headers (lower-case names).
NOTED_HEADERS = (
    FORWARDED_FOR_HEADER,
    *ATTRIBUTION_HEADERS,
    GATEWAY_SECRET_HEADER,
    SHADOW_HEADER,
    USER_AGENT_HEADER,
)

# Probes and docs: polled constantly, never worth a row. The health paths are those of
# the contract's "health" group; an operation added there is unlogged too.
DOCS_PATHS = frozenset({"/openapi.json", "/docs", "/redoc"})
HEALTH_PATHS = frozenset(op.path for op in OPERATIONS if op.group == "health")
# A backend's Prometheus page (not a contract operation); scraped as often as the probes.
METRICS_PATH = "/metrics"
UNLOGGED_PATHS = HEALTH_PATHS | DOCS_PATHS | {METRICS_PATH}
UNLOGGED_PREFIXES = ("/admin/", "/static/")  # Django's admin and its assets


def valid_request_id(value: str | bytes) -> bool:
    """1 to 128 visible ASCII characters (no spaces): safe in a header, a log and a URL."""
    if not 0 < len(value) <= MAX_REQUEST_ID:
        return False
    data = value.encode("latin-1", "replace") if isinstance(value, str) else value
    return all(0x21 <= c <= 0x7E for c in data)


def new_request_id() -> str:
    """A fresh id: 32 hex digits (128 bits, see ``fresh_ids``)."""
    return fresh_ids.new_hex_id()


def request_id_from(given: str | None) -> str:
    """The caller's X-Request-ID when it is valid, else a fresh one."""
    return given if given and valid_request_id(given) else new_request_id()


@lru_cache(maxsize=4096)  # the same few proxies and clients, request after request
def client_ip(forwarded_for: str | None, peer: str | None) -> str | None:
    """The address the nearest proxy saw (the last X-Forwarded-For hop), else the peer.

    The last hop, not the first: the gateway appends the address it accepted the
    connection from, while anything before it is whatever the client chose to send.
    None when the value is not an IP address.
    """
    candidate = (forwarded_for or "").rsplit(",", 1)[-1].strip() or (peer or "")
    return _canonical_ip(candidate)


@lru_cache(maxsize=4096)  # the same few peers and proxies: parsing one costs ~4 us
def _canonical_ip(candidate: str) -> str | None:
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


def from_gateway(presented: str | None, secret: str) -> bool:
    """Whether a request carries the gateway secret (never true when no secret is set).

    Without a configured secret nothing proves where a request came from, so attribution
    headers are not trusted at all rather than trusted from anyone.
    """
    if not secret or presented is None:
        return False
    return hmac.compare_digest(presented.encode("latin-1", "replace"), secret.encode("latin-1"))


def is_shadow(from_gateway: bool, headers: Mapping[str, str]) -> bool:
    """A copy the gateway's shadow mode mirrored (X-Shadow: 1, honoured only from the gateway)."""
    return from_gateway and headers.get(SHADOW_HEADER) == "1"


def check_gateway_secret(value: str) -> str:
    """A settings validator: the secret travels in a header, so visible ASCII only."""
    if value and not all(0x21 <= ord(c) <= 0x7E for c in value):
        raise ValueError("ML_SERVICE_GATEWAY_SECRET must be visible ASCII (no spaces)")
    return value


def is_logged(path: str) -> bool:
    """Whether a request to ``path`` gets a request-log row."""
    return path not in UNLOGGED_PATHS and not path.startswith(UNLOGGED_PREFIXES)
