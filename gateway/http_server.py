"""uvicorn's HTTP/1.1 protocol with its own 400 (unparseable request) in the error shape.

uvicorn answers a request it cannot parse (bad framing, invalid characters, conflicting
lengths) itself, before the app sees it, as plain text without X-Request-ID; the gateway's
clients get the one error shape for those too.
"""

from __future__ import annotations

import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shared_schemas.errors import error_payload
from shared_schemas.request_meta import new_request_id


class ErrorShapeHttpToolsProtocol(HttpToolsProtocol):
    def send_400_response(self, msg: str) -> None:
        request_id = new_request_id()  # no request was parsed: a new id, as for any
        body = json.dumps(error_payload(400, msg, request_id)).encode()
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        for name, value in self.server_state.default_headers:
            head.append(name + b": " + value + b"\r\n")
        head += [
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
            b"x-request-id: " + request_id.encode("ascii") + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()
