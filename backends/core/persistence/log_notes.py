"""What one request leaves for its request-log row, and the row built from it.

The backends fill a ``LogNotes`` while they serve (the request flow writes the endpoint
and the payloads, the error mapping writes the error) and build the row with
``request_record`` once the response is sent. Payloads stay objects until then: a
validated request or a response model is dumped only for a row that is really written.

A cacheable request's body is dumped and sanitised once per distinct body: the cache key
the flow computes digests the same JSON the dump is made of, and a cache hit means that
body came before. The sanitised payload is kept by model and digest (``_SANITIZED``) and
shared by the rows of every request with that body (~10 us of a cached answer's event
loop: the dump, the secret redaction and the JSON text for the size check).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from backends.core.api.api_request import ApiRequest
from backends.core.metering.meter import Meter, MeterReading
from backends.core.persistence.records import RequestRecord
from backends.core.persistence.sanitize import EncodedJson, sanitize_payload
from shared_schemas import request_meta

# (request model, request_hash of the body) -> that body's sanitised log payload. Cleared
# when full: a payload is at most sanitize.MAX_PAYLOAD_BYTES of text.
_SANITIZED: dict[tuple[type[BaseModel], str], EncodedJson] = {}
SANITIZED_BODIES = 256


@dataclass(slots=True)
class LogNotes:
    endpoint: str | None = None  # the contract path (a template for path parameters)
    request: ApiRequest | None = None  # the validated request
    # sha256 of the validated body's JSON (cache_keys.request_hash), when it was computed
    request_hash: str | None = None
    invalid_request: Any = None  # what is kept of a body that failed validation
    response: BaseModel | dict[str, Any] | None = None
    error: str | None = None
    reading: MeterReading | None = None  # what the request consumed (the request flow)
    # A mirrored copy (the gateway's shadow marker, honoured only from the gateway): the
    # one place that makes a request free.
    shadow: bool = False
    credits: int | None = None  # settled once the status is known

    def settle(self, meter: Meter, status: int) -> int:
        """The request's credits, computed once: the response header and the row agree."""
        if self.credits is None:
            self.credits = meter.credits(self.reading, status, shadow=self.shadow)
        return self.credits

    def request_payload(self) -> Any:
        """The request body for the row: sanitised already (an ``EncodedJson``) when it is
        one the process has seen, else as ``RequestRecord.build`` sanitises it."""
        request = self.request
        if request is None:
            return self.invalid_request
        if self.request_hash is None or request.body is None:
            return request.loggable_body()
        key = (type(request.body), self.request_hash)
        found = _SANITIZED.get(key)
        if found is None:
            cleaned = sanitize_payload(request.loggable_body())
            if type(cleaned) is not EncodedJson:  # truncated: not worth keeping
                return cleaned
            if len(_SANITIZED) >= SANITIZED_BODIES:
                _SANITIZED.clear()
            found = _SANITIZED[key] = cleaned
        return found

    def response_payload(self) -> Any:
        if isinstance(self.response, BaseModel):
            return self.response.model_dump(mode="json")
        return self.response


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the server knew of a request and its answer, captured on the request path."""

    method: str
    path: str
    status: int
    duration_ms: float
    request_id: str
    headers: Mapping[str, str]  # case-insensitive lookups of lower-case names
    peer: str | None
    # The request carried the gateway secret (request_meta.from_gateway): only then are
    # its attribution headers the gateway's and not whatever a direct caller wrote.
    from_gateway: bool = False

    def attribution(self, header: str) -> str | None:
        """An attribution header's value, when the gateway set it; else None."""
        return self.headers.get(header) if self.from_gateway else None


def request_record(service_name: str, notes: LogNotes, facts: RequestFacts) -> RequestRecord:
    """The ml_service_requests row (payloads dumped and sanitised here, off the response path
    where the backend allows it)."""
    headers = facts.headers
    return RequestRecord.build(
        service_name=service_name,
        endpoint=notes.endpoint or facts.path,
        method=facts.method,
        status_code=facts.status,
        duration_ms=facts.duration_ms,
        request_id=facts.request_id,
        request_payload=notes.request_payload(),
        response_payload=notes.response_payload(),
        error_message=notes.error,
        user_id=facts.attribution(request_meta.USER_ID_HEADER),
        organization_id=facts.attribution(request_meta.ORGANIZATION_ID_HEADER),
        api_key_id=facts.attribution(request_meta.API_KEY_ID_HEADER),
        credits_charged=notes.credits or 0,
        ip_address=request_meta.client_ip(
            headers.get(request_meta.FORWARDED_FOR_HEADER), facts.peer
        ),
        user_agent=headers.get(request_meta.USER_AGENT_HEADER),
        shadow=notes.shadow,
    )
