"""Request and response headers: hop-by-hop stripping, X-Forwarded-*, X-Request-ID."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from starlette.types import Scope

from shared_schemas import request_meta

RawHeaders = list[tuple[bytes, bytes]]

# RFC 9110 section 7.6.1, plus the non-standard ones proxies still meet.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Set by the gateway itself on every request it forwards: a client's copy is dropped, so
# neither the gateway secret nor who-called can be forged through the gateway. A client's
# X-Credits-Charged is dropped too: what a request costs is the backend's to say.
_REQUEST_OWNED = frozenset(
    name.encode() for name in (*request_meta.GATEWAY_SET_HEADERS, request_meta.CREDITS_HEADER)
)
# Set by the gateway itself (or by its server) on every response it sends.
_RESPONSE_OWNED = HOP_BY_HOP | {b"x-request-id", b"x-ml-backend", b"server", b"date"}


_SECRET = request_meta.GATEWAY_SECRET_HEADER.encode()
_ATTRIBUTION = tuple(name.encode() for name in request_meta.ATTRIBUTION_HEADERS)


@dataclass(slots=True)
class Incoming:
    """What the gateway needs from a request, read in one pass over its headers."""

    request_id: str
    headers: RawHeaders
    content_length: int | None
    credential: str | None
    client_ip: str
    path: str = ""
    # Neither Content-Length (other than 0) nor Transfer-Encoding: by HTTP/1.1 framing the
    # request has no body, and the server has already read all of it.
    bodyless: bool = False

    def attribute(self, user_id: str | None, organization_id: str | None, key_id: str) -> None:
        """Add who called (from the API key) to the headers forwarded upstream."""
        for name, value in zip(_ATTRIBUTION, (user_id, organization_id, key_id), strict=True):
            if value:
                self.headers.append((name, value.encode("latin-1", "replace")))


def read_request(scope: Scope, strip_credentials: bool, gateway_secret: bytes = b"") -> Incoming:
    """Headers to forward upstream (hop-by-hop and Host removed, X-Forwarded-* and ID added).

    The client's gateway-secret and attribution headers are dropped; the secret, when one
    is configured, is added (attribution is added after auth, ``attribute``).
    """
    forward: RawHeaders = []
    request_id = forwarded_for = host = credential = None
    content_length: int | None = None
    connection_tokens: set[bytes] | None = None
    framed = False  # Content-Length or Transfer-Encoding seen
    for name, value in scope["headers"]:
        if name in HOP_BY_HOP:
            if name == b"connection":
                connection_tokens = {t.strip().lower() for t in value.split(b",")}
            elif name == b"transfer-encoding":
                framed = True
            continue
        if name == b"host":
            host = value
        elif name == b"x-request-id":
            if request_meta.valid_request_id(value):
                request_id = value
        elif name == b"x-forwarded-for":
            forwarded_for = value
        elif name in _REQUEST_OWNED:
            pass
        elif name in (b"x-forwarded-proto", b"x-forwarded-host", b"expect"):
            # The edge states what it saw, never what it was told; uvicorn already answered
            # the client's Expect: 100-continue, the backend must not wait for it again.
            pass
        elif name == b"authorization" and value[:7].lower() == b"bearer ":
            credential = value[7:].strip()
            if not strip_credentials:
                forward.append((name, value))
        elif name == b"x-api-key":
            credential = credential or value.strip()
            if not strip_credentials:
                forward.append((name, value))
        else:
            if name == b"content-length":
                content_length = int(value) if value.isdigit() else None
                framed = framed or content_length != 0
            forward.append((name, value))
    if connection_tokens:
        forward = [(n, v) for n, v in forward if n not in connection_tokens]

    client = scope.get("client")
    client_ip = client[0] if client else ""
    ip = client_ip.encode("latin-1")
    forward.append((b"x-forwarded-for", forwarded_for + b", " + ip if forwarded_for else ip))
    forward.append((b"x-forwarded-proto", scope.get("scheme", "http").encode("latin-1")))
    if host:
        forward.append((b"x-forwarded-host", host))
    rid = request_id.decode("ascii") if request_id else request_meta.new_request_id()
    forward.append((b"x-request-id", rid.encode("ascii")))
    if gateway_secret:
        forward.append((_SECRET, gateway_secret))
    return Incoming(
        request_id=rid,
        headers=forward,
        content_length=content_length,
        credential=credential.decode("latin-1") if credential else None,
        client_ip=client_ip,
        path=scope["path"],
        bodyless=not framed,
    )


def response_headers(
    upstream: Iterable[tuple[bytes, bytes]], request_id: bytes, backend: bytes
) -> RawHeaders:
    """Upstream response headers minus hop-by-hop ones, plus X-Request-ID and X-ML-Backend."""
    connection_tokens: set[bytes] = set()
    out: RawHeaders = []
    for name, value in upstream:
        lower = name.lower()
        if lower in _RESPONSE_OWNED:
            if lower == b"connection":
                connection_tokens = {t.strip().lower() for t in value.split(b",")}
            continue
        out.append((lower, value))
    if connection_tokens:
        out = [(n, v) for n, v in out if n not in connection_tokens]
    out.append((b"x-request-id", request_id))
    out.append((b"x-ml-backend", backend))
    return out


def media_type(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The Content-Type's media type, lower-cased, without parameters (b"" when absent)."""
    for name, value in headers:
        if name.lower() == b"content-type":
            return value.split(b";", 1)[0].strip().lower()
    return b""
