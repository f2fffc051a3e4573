"""Maps openai SDK exceptions to the engine's domain errors, with secrets scrubbed.

Shared by every OpenAI-backed provider (embeddings, chat) so the mapping exists once.
Upstream error texts can echo (part of) the API key, so every message that leaves this
module goes through :func:`redact`, and 401/403 never carry the upstream text at all.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from backends.core.errors import MLServiceError, RateLimited, UpstreamError, UpstreamTimeout

if TYPE_CHECKING:
    import openai

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Key-shaped tokens (OpenAI "sk-...", also partially masked "sk-ab***yz") and bearer values.
_KEY_PATTERN = re.compile(r"(sk-[A-Za-z0-9_\-*.]{3,}|Bearer\s+\S+)")
_MAX_UPSTREAM_TEXT = 300


# Words of an upstream text that may quote a key, whole or masked ("ab12****yz89").
_TOKEN = re.compile(r"[A-Za-z0-9_\-*.+/=]{4,}")
_MASK = re.compile(r"\*+|\.{3,}|…")
_MASKED_PIECE_CHARS = 4  # what masked echoes show of a key's ends (OpenAI shows 4 + 4)
_UNMASKED_RUN_CHARS = 8  # a run this long shared with the key is the key, not a word


def redact(text: str, secret: str | None = None) -> str:
    """Remove the configured key, parts of it, and anything key-shaped from an upstream text.

    A provider that does not use "sk-" keys can still echo part of one ("Incorrect API
    key provided: ab12****yz89"): any word showing a piece of the configured key goes.
    """
    if secret:
        text = text.replace(secret, "***")
        text = _TOKEN.sub(lambda m: "***" if _shows_part_of(m.group(), secret) else m.group(), text)
    return _KEY_PATTERN.sub("***", text)


def _shows_part_of(word: str, secret: str) -> bool:
    pieces = [piece for piece in _MASK.split(word) if piece]
    if len(pieces) > 1 or _MASK.search(word):  # masked: its visible ends give it away
        return any(len(p) >= _MASKED_PIECE_CHARS and p in secret for p in pieces)
    run = _UNMASKED_RUN_CHARS
    return any(word[i : i + run] in secret for i in range(len(word) - run + 1))


def _upstream_message(exc: openai.APIStatusError, secret: str | None) -> str:
    body = exc.body
    message: object = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message.strip():
        message = exc.response.reason_phrase or "no message"
    return redact(str(message), secret)[:_MAX_UPSTREAM_TEXT]


def _retry_after_s(exc: openai.APIStatusError) -> int:
    headers = exc.response.headers
    try:
        if (raw_ms := headers.get("retry-after-ms")) is not None:
            return max(1, round(float(raw_ms) / 1000))
        if (raw := headers.get("retry-after")) is not None:
            return max(1, round(float(raw)))
    except ValueError:
        pass  # an HTTP-date or junk: fall back to the default
    return 1


def _detail(status: int, message: str) -> dict[str, Any]:
    return {"loc": ["upstream"], "message": f"status {status}: {message}", "type": "upstream_error"}


def map_openai_error(
    exc: openai.OpenAIError, *, operation: str, secret: str | None = None
) -> MLServiceError:
    """The domain error for one openai SDK exception (``operation`` names the call)."""
    import openai  # already loaded by whoever made the client; importing it costs ~1 s

    where = f"OpenAI-compatible provider ({operation})"
    if isinstance(exc, openai.APITimeoutError):
        return UpstreamTimeout(f"{where} timed out")
    if isinstance(exc, openai.APIConnectionError):
        return UpstreamError(f"{where} could not be reached")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status in (401, 403):
            # The upstream text for these often quotes the key: never pass it on.
            return UpstreamError(
                f"{where} rejected the credentials (HTTP {status}): check OPENAI_API_KEY",
                details=[_detail(status, "authentication failed")],
            )
        text = _upstream_message(exc, secret)
        if status == 429:
            return RateLimited(
                f"{where} is rate limited: {text}", retry_after_s=_retry_after_s(exc)
            )
        if status >= 500:
            return UpstreamError(f"{where} failed (HTTP {status})", details=[_detail(status, text)])
        return UpstreamError(
            f"{where} refused the request (HTTP {status}): {text}", details=[_detail(status, text)]
        )
    # Response validation, missing fields and other SDK-side failures.
    return UpstreamError(f"{where} returned an unusable answer: {type(exc).__name__}")


@contextmanager
def openai_errors(operation: str, *, secret: str | None = None) -> Iterator[None]:
    """Run an SDK call; re-raise its failures as domain errors without the SDK's chain."""
    import openai

    try:
        yield
    except openai.OpenAIError as exc:
        mapped = map_openai_error(exc, operation=operation, secret=secret)
        logger.warning("%s: %s", mapped.code, mapped.message)
        # `from None`: the original exception (and its message) stays out of tracebacks/logs.
        raise mapped from None
    except json.JSONDecodeError:  # a 200 labelled JSON that is not: the SDK lets it through
        mapped = _unusable(operation, "invalid JSON")
        logger.warning("%s: %s", mapped.code, mapped.message)
        raise mapped from None


def parsed(response: T, operation: str) -> T:
    """The SDK's answer when it is the object asked for, else UpstreamError (502).

    A 200 that is not JSON (an HTML proxy page) or JSON of another shape (a list) comes
    back from the SDK as a str or a list instead of its model, which failed later as an
    AttributeError (a 500).
    """
    import openai

    if not isinstance(response, openai.BaseModel):
        raise _unusable(operation, f"not a JSON object ({type(response).__name__})")
    return response


def _unusable(operation: str, why: str) -> UpstreamError:
    return UpstreamError(
        f"OpenAI-compatible provider ({operation}) returned an unusable answer: {why}"
    )
