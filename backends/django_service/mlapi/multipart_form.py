"""Multipart parsing with python-multipart, by the rules the FastAPI backend applies.

Django's own parser forgives framing errors (junk before the first boundary, a part
without a name) that Starlette's answers with 400; parsing with the same library and
the same limits here keeps the two backends' answers identical for malformed uploads.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable
from typing import Any

from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

from backends.core.api.limits import MAX_FIELD_BYTES, MAX_FIELDS, MAX_FILES
from backends.core.errors import BadRequest


def _decode(data: bytes, charset: str) -> str:
    try:
        return data.decode(charset)
    except (UnicodeDecodeError, LookupError):
        return data.decode("latin-1")


class _FormCollector:
    """python-multipart callbacks that keep every part in memory (the body is capped)."""

    def __init__(self, charset: str) -> None:
        self.charset = charset
        self.items: list[tuple[str, str | bytes]] = []
        self.filenames: dict[str, str] = {}
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._data = bytearray()
        self._name = ""
        self._is_file = False
        self._files = 0
        self._fields = 0

    def on_part_begin(self) -> None:
        self._disposition, self._data, self._is_file = b"", bytearray(), False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name, self._header_value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise BadRequest('Malformed multipart body: a part has no Content-Disposition "name"')
        self._name = _decode(options[b"name"], self.charset)
        self._is_file = b"filename" in options
        if self._is_file:
            self._files += 1
            if self._files > MAX_FILES:
                raise BadRequest(f"Too many files: at most {MAX_FILES}")
            self.filenames[self._name] = _decode(options[b"filename"], self.charset)
        else:
            self._fields += 1
            if self._fields > MAX_FIELDS:
                raise BadRequest(f"Too many fields: at most {MAX_FIELDS}")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if not self._is_file and len(self._data) + (end - start) > MAX_FIELD_BYTES:
            raise BadRequest(f"A form field exceeds {MAX_FIELD_BYTES // 1024} KB")
        self._data += data[start:end]

    def on_part_end(self) -> None:
        value = bytes(self._data) if self._is_file else _decode(bytes(self._data), self.charset)
        self.items.append((self._name, value))


def parse_multipart(
    content_type: str, chunks: Iterable[bytes]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Fields (files as bytes, others as str; the last of a repeated name wins), file names."""
    _, params = parse_options_header(content_type)
    charset_option = params.get(b"charset", b"utf-8")
    try:
        charset = codecs.lookup(charset_option.decode("latin-1")).name
    except LookupError:
        charset = "latin-1"
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadRequest("Malformed multipart body: missing boundary")
    collector = _FormCollector(charset)
    callbacks: Any = {
        name: getattr(collector, name)
        for name in (
            "on_part_begin", "on_part_data", "on_part_end", "on_header_field",
            "on_header_value", "on_header_end", "on_headers_finished",
        )
    }  # fmt: skip
    try:
        parser = MultipartParser(boundary, callbacks)
        for chunk in chunks:
            parser.write(chunk)
        parser.finalize()
    except FormParserError:
        raise BadRequest("Malformed multipart body: invalid multipart data") from None
    fields: dict[str, Any] = dict(collector.items)
    files = collector.filenames
    filenames = {name: files[name] for name in files if isinstance(fields.get(name), bytes)}
    return fields, filenames
