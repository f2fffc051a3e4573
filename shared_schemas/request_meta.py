"""What a request says about itself, read by one rule at the gateway and in every backend.

The request id (``X-Request-ID``), which paths leave no request-log row, the attribution
headers and the client address. The gateway imports this module (it depends on the
contract, never on the engine), so an id the gateway accepts is one the backends accept.
"""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache

from shared_schemas.operations import OPERATIONS

REQUEST_ID_HEADER = "x-request-id"
FORWARDED_FOR_HEADER = "x-forwarded-for"
USER_ID_HEADER = "x-user-id"
ORGANIZATION_ID_HEADER = "x-organization-id"
CREDITS_HEADER = "x-credits-charged"
USER_AGENT_HEADER = "user-agent"
MAX_REQUEST_ID = 128  # ErrorResponse.request_id's maxLength
# What a request-log row records of a request's headers (lower-case names).
NOTED_HEADERS = (
    FORWARDED_FOR_HEADER,
    USER_ID_HEADER,
    ORGANIZATION_ID_HEADER,
    CREDITS_HEADER,
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
    """A fresh id: 32 hex digits (128 random bits)."""
    return os.urandom(16).hex()


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
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


def credits_from(value: str | None) -> int:
    """A non-negative credit count from a header; anything unreadable counts 0."""
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


def is_logged(path: str) -> bool:
    """Whether a request to ``path`` gets a request-log row."""
    return path not in UNLOGGED_PATHS and not path.startswith(UNLOGGED_PREFIXES)
