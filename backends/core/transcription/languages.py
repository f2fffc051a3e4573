"""The languages Whisper (base, multilingual) can transcribe: code -> English name."""

from __future__ import annotations

from backends.core.errors import InvalidInput

# Whisper's own list, in its order (most training data first). Codes are ISO-639-1 except
# "haw" (ISO-639-2, no 2-letter code exists) and Whisper's historical "jw" for Javanese.
# "yue" (Cantonese) is left out: only large-v3 has that token, the base model does not.
LANGUAGES: dict[str, str] = {
    "en": "English", "zh": "Chinese", "de": "German", "es": "Spanish", "ru": "Russian",
    "ko": "Korean", "fr": "French", "ja": "Japanese", "pt": "Portuguese", "tr": "Turkish",
    "pl": "Polish", "ca": "Catalan", "nl": "Dutch", "ar": "Arabic", "sv": "Swedish",
    "it": "Italian", "id": "Indonesian", "hi": "Hindi", "fi": "Finnish", "vi": "Vietnamese",
    "he": "Hebrew", "uk": "Ukrainian", "el": "Greek", "ms": "Malay", "cs": "Czech",
    "ro": "Romanian", "da": "Danish", "hu": "Hungarian", "ta": "Tamil", "no": "Norwegian",
    "th": "Thai", "ur": "Urdu", "hr": "Croatian", "bg": "Bulgarian", "lt": "Lithuanian",
    "la": "Latin", "mi": "Maori", "ml": "Malayalam", "cy": "Welsh", "sk": "Slovak",
    "te": "Telugu", "fa": "Persian", "lv": "Latvian", "bn": "Bengali", "sr": "Serbian",
    "az": "Azerbaijani", "sl": "Slovenian", "kn": "Kannada", "et": "Estonian",
    "mk": "Macedonian", "br": "Breton", "eu": "Basque", "is": "Icelandic", "hy": "Armenian",
    "ne": "Nepali", "mn": "Mongolian", "bs": "Bosnian", "kk": "Kazakh", "sq": "Albanian",
    "sw": "Swahili", "gl": "Galician", "mr": "Marathi", "pa": "Punjabi", "si": "Sinhala",
    "km": "Khmer", "sn": "Shona", "yo": "Yoruba", "so": "Somali", "af": "Afrikaans",
    "oc": "Occitan", "ka": "Georgian", "be": "Belarusian", "tg": "Tajik", "sd": "Sindhi",
    "gu": "Gujarati", "am": "Amharic", "yi": "Yiddish", "lo": "Lao", "uz": "Uzbek",
    "fo": "Faroese", "ht": "Haitian Creole", "ps": "Pashto", "tk": "Turkmen",
    "nn": "Nynorsk", "mt": "Maltese", "sa": "Sanskrit", "lb": "Luxembourgish",
    "my": "Myanmar", "bo": "Tibetan", "tl": "Tagalog", "mg": "Malagasy", "as": "Assamese",
    "tt": "Tatar", "haw": "Hawaiian", "ln": "Lingala", "ha": "Hausa", "ba": "Bashkir",
    "jw": "Javanese", "su": "Sundanese",
}  # fmt: skip

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
