"""The two headers a JSON body read checks, read straight from the ASGI header list."""

from __future__ import annotations

from starlette.datastructures import Headers

from backends.fastapi_service.body import json_headers


def test_json_headers_are_the_first_of_each_as_starlette_reads_them() -> None:
    raw = [
        (b"host", b"h"), (b"content-type", b"application/json; charset=utf-8"),
        (b"content-length", b"12"), (b"content-type", b"text/plain"), (b"content-length", b"9"),
    ]  # fmt: skip
    starlette = Headers(raw=raw)
    assert json_headers(raw) == (starlette.get("content-type"), starlette.get("content-length"))
    assert json_headers(raw) == ("application/json; charset=utf-8", "12")
    assert json_headers([(b"host", b"h")]) == (None, None)
