"""Request-parsing limits both backends apply, so malformed input gets the same answer."""

from __future__ import annotations

MAX_FILES = 4
MAX_FIELDS = 32
MAX_FIELD_BYTES = 1024 * 1024  # one non-file multipart part; files are bounded by the body cap
