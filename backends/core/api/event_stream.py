"""A ``StreamResult``'s events as server-sent-event bytes, and what the request log keeps.

Framework-free and blocking (an event waits for the model): FastAPI reads it from a worker
thread, Django hands it to the WSGI server as a streaming body.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

from backends.core.api.api_request import StreamResult
from backends.core.errors import MLServiceError
from backends.core.persistence.log_notes import LogNotes
from shared_schemas import generation as gen
from shared_schemas.errors import error_payload

logger = logging.getLogger(__name__)
# Response headers of every event stream: no caching, and no buffering by a reverse proxy
# (nginx holds a proxied body back unless told otherwise).
EVENT_STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def encode_event(name: str, data: bytes) -> bytes:
    """One server-sent event (the data is one line of JSON: no newline to escape)."""
    return b"event: " + name.encode() + b"\ndata: " + data + b"\n\n"


class EventStream:
    """The body of one streamed answer; notes the log row's response when it ends."""

    def __init__(self, result: StreamResult, notes: LogNotes) -> None:
        self._events = result.events
        self._notes = notes

    def encoded(self, request_id: str) -> Iterator[bytes]:
        """The events as bytes; an error after the first one becomes a final ``error`` event.

        The log row gets the ``done`` event's whole response, or the error and how many
        events were sent. Closing this iterator (the client went away) stops the model.
        """
        notes, sent = self._notes, 0
        try:
            for name, payload in self._events:
                if name == gen.DONE_EVENT:
                    notes.response = payload
                yield encode_event(name, payload.model_dump_json().encode())
                sent += 1
        except GeneratorExit:
            notes.error = f"the client went away after {sent} events"
            notes.response = _partial(sent)
            raise
        except Exception as exc:
            status, message = 500, f"internal error: {type(exc).__name__}"
            code, details = None, None
            if isinstance(exc, MLServiceError):
                status, message, code, details = exc.status_code, exc.message, exc.code, exc.details
            else:
                logger.exception("event stream failed after %d events", sent)
            notes.error = message
            notes.response = _partial(sent)
            body = error_payload(status, message, request_id, code=code, details=details)
            yield encode_event(gen.ERROR_EVENT, _json(body))
        finally:
            self._events.close()


def _partial(sent: int) -> dict[str, object]:
    return {"media_type": gen.EVENT_STREAM_MEDIA_TYPE, "events": sent}


def _json(body: dict[str, object]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()
