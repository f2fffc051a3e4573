"""The languages Whisper (base, multilingual) can transcribe: code -> English name."""

from __future__ import annotations

from backends.core.errors import InvalidInput
from shared_schemas.languages import WHISPER_LANGUAGES

# One list for the contract (/languages, the request enum) and the engine's validation.
# "yue" (Cantonese) is left out: only large-v3 has that token, the base model does not.
LANGUAGES: dict[str, str] = WHISPER_LANGUAGES

# Accepted spellings that Whisper itself does not use.
_ALIASES = {"jv": "jw", "iw": "he", "in": "id"}


def language_list() -> list[tuple[str, str]]:
    """(code, name) pairs in Whisper's order."""
    return list(LANGUAGES.items())


def normalise_language(language: str | None) -> str | None:
    """Map a code (or an English name) to Whisper's code; None/blank means auto-detect."""
    if language is None or not language.strip():
        return None
    key = language.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key in LANGUAGES:
        return key
    by_name = {name.lower(): code for code, name in LANGUAGES.items()}
    if key in by_name:
        return by_name[key]
    # "en-US" style tags: the primary subtag is what Whisper knows
    primary = key.split("-", 1)[0]
    if primary != key and primary in LANGUAGES:
        return primary
    raise InvalidInput(
        f"unsupported language '{language}': use an ISO-639-1 code from /languages",
        details=[
            {"loc": ["language"], "message": "unsupported language", "type": "invalid_language"}
        ],
    )
