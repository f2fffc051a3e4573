"""What one request leaves for its request-log row, and the row built from it.

The backends fill a ``LogNotes`` while they serve (the request flow writes the endpoint
and the payloads, the error mapping writes the error) and build the row with
``request_record`` once the response is sent. Payloads stay objects until then: a
validated request or a response model is dumped only for a row that is really written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from backends.core.api.api_request import ApiRequest
from backends.core.persistence.records import RequestRecord
from shared_schemas import request_meta


@dataclass(slots=True)
class LogNotes:
    endpoint: str | None = None  # the contract path (a template for path parameters)
    request: ApiRequest | None = None  # the validated request
    invalid_request: Any = None  # what is kept of a body that failed validation
    response: BaseModel | dict[str, Any] | None = None
    error: str | None = None

    def request_payload(self) -> Any:
        if self.request is not None:
            return self.request.loggable_body()
        return self.invalid_request

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

    @property
    def shadow(self) -> bool:
        """A request the gateway mirrored to this backend (X-Shadow: 1 next to the secret)."""
        return self.from_gateway and self.headers.get(request_meta.SHADOW_HEADER) == "1"

    def attribution(self, header: str) -> str | None:
        """An attribution header's value, when the gateway set it; else None."""
        return self.headers.get(header) if self.from_gateway else None


def request_record(service_name: str, notes: LogNotes, facts: RequestFacts) -> RequestRecord:
    """The ml_service_requests row (payloads dumped and sanitised here, off the response path
    where the backend allows it)."""
    headers = facts.headers
    shadow = facts.shadow
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
        # a shadow copy costs its caller nothing: the primary's answer was the one charged
        credits_charged=0
        if shadow
        else request_meta.credits_from(headers.get(request_meta.CREDITS_HEADER)),
        ip_address=request_meta.client_ip(
            headers.get(request_meta.FORWARDED_FOR_HEADER), facts.peer
        ),
        user_agent=headers.get(request_meta.USER_AGENT_HEADER),
        shadow=shadow,
    )
