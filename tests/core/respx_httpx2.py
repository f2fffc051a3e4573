"""respx support for openai>=3, which sends through httpx2/httpcore2 instead of httpx/httpcore.

Importing this module registers a respx mocker named "httpcore2"; use
``respx.mock(using="httpcore2")``. Requests and responses still pass through respx's router,
so routes, side effects and call assertions work as usual. Import it from here only: respx
refuses a second mocker with the same name.
"""

from __future__ import annotations

from typing import Any

import httpcore2
from respx.mocks import HTTPCoreMocker


class HTTPCore2Mocker(HTTPCoreMocker):
    """Patches httpcore2's transports the way respx's own mocker patches httpcore's."""

    name = "httpcore2"
    targets = [
        "httpcore2._sync.connection.HTTPConnection",
        "httpcore2._sync.connection_pool.ConnectionPool",
        "httpcore2._sync.http_proxy.HTTPProxy",
        "httpcore2._async.connection.AsyncHTTPConnection",
        "httpcore2._async.connection_pool.AsyncConnectionPool",
        "httpcore2._async.http_proxy.AsyncHTTPProxy",
    ]

    @classmethod
    def from_sync_httpx_response(cls, httpx_response: Any, target: Any, **kwargs: Any) -> Any:
        return httpcore2.Response(
            status=httpx_response.status_code,
            headers=httpx_response.headers.raw,
            content=httpx_response.stream,
            extensions=httpx_response.extensions,
        )
