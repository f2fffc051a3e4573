"""Hosted transcription through the openai SDK (any OpenAI-compatible base URL)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backends.core.errors import UpstreamError
from backends.core.openai_client import make_openai_client
from backends.core.openai_errors import openai_errors
from backends.core.settings import EngineSettings
from backends.core.transcription.audio_formats import mime_type_for
from backends.core.transcription.languages import LANGUAGES, normalise_language
from backends.core.transcription.local import LOCAL_MODEL
from backends.core.transcription.results import Segment, Transcript

if TYPE_CHECKING:
    import openai

DEFAULT_OPENAI_TRANSCRIPTION_MODEL = "whisper-1"
_CODE_BY_NAME = {name.lower(): code for code, name in LANGUAGES.items()}


class OpenAITranscriptionProvider:
    """Sends the original file (no re-encoding) and asks for verbose_json."""

    provider = "openai"

    def __init__(
        self,
        client: openai.OpenAI,
        *,
        model: str = DEFAULT_OPENAI_TRANSCRIPTION_MODEL,
        secret: str | None = None,
    ) -> None:
        self._client = client
        self._secret = secret
        self.model = model

    def transcribe(
        self,
        data: bytes,
        *,
        filename: str | None = None,
        language: str | None = None,
        temperature: float = 0.0,
        model: str | None = None,
    ) -> Transcript:
        code = normalise_language(language)
        name = filename or "audio.mp3"
        options: dict[str, Any] = {"temperature": temperature}
        if code is not None:
            options["language"] = code
        with openai_errors("audio transcription", secret=self._secret):
            response = self._client.audio.transcriptions.create(
                file=(name, data, mime_type_for(name)),
                model=model or self.model,
                response_format="verbose_json",
                **options,
            )
        text = getattr(response, "text", None)
        if not isinstance(text, str):
            raise UpstreamError("OpenAI-compatible provider returned a transcription without text")
        return Transcript(
            text=text.strip(),
            language=_language_code(getattr(response, "language", None)) or code,
            duration=_float(getattr(response, "duration", None)),
            segments=tuple(_segment(i, raw) for i, raw in enumerate(_segments_of(response))),
            model=model or self.model,
            provider=self.provider,
        )

    def check(self) -> tuple[bool, str | None]:
        return True, None  # configured; reachability shows on the first call, not in probes


def make_openai_transcription_provider(settings: EngineSettings) -> OpenAITranscriptionProvider:
    """The hosted provider from settings; ProviderUnavailable when no API key is set."""
    client = make_openai_client(settings, feature="hosted transcription")
    secret = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    configured = settings.transcription_model
    model = configured if configured != LOCAL_MODEL else DEFAULT_OPENAI_TRANSCRIPTION_MODEL
    return OpenAITranscriptionProvider(client, model=model, secret=secret)


def _language_code(value: object) -> str | None:
    """verbose_json names the language ("english"); the API reports codes, as local does."""
    if not isinstance(value, str) or not value.strip():
        return None
    key = value.strip().lower()
    return key if key in LANGUAGES else _CODE_BY_NAME.get(key, key)


def _segments_of(response: object) -> list[object]:
    segments = getattr(response, "segments", None)
    return list(segments) if isinstance(segments, list) else []


def _segment(index: int, raw: object) -> Segment:
    def field(name: str) -> object:
        return raw.get(name) if isinstance(raw, dict) else getattr(raw, name, None)

    text = field("text")
    return Segment(
        id=index,
        start=_float(field("start")) or 0.0,
        end=_float(field("end")) or 0.0,
        text=text.strip() if isinstance(text, str) else "",
        avg_logprob=_float(field("avg_logprob")),
        no_speech_prob=_float(field("no_speech_prob")),
    )


def _float(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return round(float(value), 3)
    return None
