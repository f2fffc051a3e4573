"""TranscriptionService: the entry point both backends call (synchronous, thread-safe)."""

from __future__ import annotations

import base64
import binascii
import math
import re
import threading

from backends.core.errors import (
    InvalidInput,
    PayloadTooLarge,
    ProviderUnavailable,
    UnknownModel,
    UnsupportedMediaType,
)
from backends.core.health import ComponentHealth
from backends.core.inference.runtime import InferenceRuntime
from backends.core.settings import EngineSettings
from backends.core.transcription import audio
from backends.core.transcription.audio_formats import (
    CONVERT_FORMATS,
    INPUT_FORMATS,
    MIME_TYPES,
    extension_of,
)
from backends.core.transcription.formats import OUTPUT_FORMATS, render
from backends.core.transcription.languages import language_list, normalise_language
from backends.core.transcription.local import LOCAL_MODEL, LocalWhisperProvider
from backends.core.transcription.results import (
    ConvertedAudio,
    CostEstimate,
    FormatsInfo,
    RenderedTranscript,
    TranscriptionProvider,
)

# Measured on this machine kind (2 cores, int8, beam 5, 2026-11-24, other jobs running):
# a 24 s clip took 3.1-6.3 s (real-time factor 0.13-0.26); the plan: 0.16 elsewhere.
# Whisper always decodes a whole 30 s window, so a 4 s clip still costs ~1.5 s.
LOCAL_REAL_TIME_FACTOR = 0.16
LOCAL_MIN_PROCESSING_S = 1.5
# Hosted Whisper turnaround is not measured here; a conservative planning figure.
HOSTED_REAL_TIME_FACTOR = 0.1
HOSTED_MIN_PROCESSING_S = 1.0
MAX_COST_DURATION_S = 86_400
# OpenAI clients send "whisper-1" by habit; locally it means the packaged model.
_LOCAL_MODEL_ALIASES = frozenset({LOCAL_MODEL, "whisper-1"})
_EXTENSION_BY_CONTAINER = {
    "wav": "wav",
    "mp3": "mp3",
    "flac": "flac",
    "ogg": "ogg",
    "mov,mp4,m4a,3gp,3g2,mj2": "m4a",
    "matroska,webm": "webm",
    "mpeg": "mpeg",
}
_DATA_URL = re.compile(r"^data:[\w/+.-]*(?:;[\w=.-]+)*;base64,", re.IGNORECASE)
_WHITESPACE = re.compile(rb"\s+")


class TranscriptionService:
    """Validates inputs, picks the configured provider, renders the requested format."""

    def __init__(
        self,
        settings: EngineSettings,
        provider: TranscriptionProvider | None = None,
        runtime: InferenceRuntime | None = None,
    ) -> None:
        """``runtime`` runs the local model (the engine's; else one of its own)."""
        self._settings = settings
        self._provider = provider
        self._runtime = runtime
        self._lock = threading.Lock()

    @property
    def provider_name(self) -> str:
        return self._provider.provider if self._provider else self._settings.transcription_provider

    def provider(self) -> TranscriptionProvider:
        """The configured provider, built on first use (ProviderUnavailable if it cannot be)."""
        if self._provider is None:
            with self._lock:
                if self._provider is None:
                    self._provider = self._build_provider()
        return self._provider

    def transcribe(
        self,
        data: bytes,
        filename: str | None = None,
        language: str | None = None,
        response_format: str = "json",
        temperature: float = 0.0,
        model: str | None = None,
    ) -> RenderedTranscript:
        audio.check_size(data, self._settings.max_audio_bytes)
        _check_extension(filename)
        if response_format not in OUTPUT_FORMATS:
            raise InvalidInput(
                f"unsupported response_format '{response_format}': use one of "
                + ", ".join(OUTPUT_FORMATS)
            )
        if not 0.0 <= temperature <= 1.0:
            raise InvalidInput("temperature must be between 0 and 1")
        code = normalise_language(language)
        provider = self.provider()
        if provider.provider == "local":
            if model is not None and model not in _LOCAL_MODEL_ALIASES:
                raise UnknownModel(
                    model, [LOCAL_MODEL, *sorted(_LOCAL_MODEL_ALIASES - {LOCAL_MODEL})]
                )
            model = None
        else:
            # hosted: fail fast on undecodable or too long audio instead of paying an upload
            info = audio.probe(data)
            if info.duration is not None and info.duration > self._settings.max_audio_seconds:
                raise PayloadTooLarge(
                    f"audio is longer than the limit of {self._settings.max_audio_seconds} s"
                )
            # the hosted API picks the decoder by file extension: name the real container
            filename = filename or f"audio.{_EXTENSION_BY_CONTAINER.get(info.format_name, 'mp3')}"
        transcript = provider.transcribe(
            data, filename=filename, language=code, temperature=temperature, model=model
        )
        return render(transcript, response_format)

    def transcribe_base64(
        self,
        audio_base64: str,
        filename: str | None = None,
        language: str | None = None,
        response_format: str = "json",
        temperature: float = 0.0,
        model: str | None = None,
    ) -> RenderedTranscript:
        data = self.decode_base64(audio_base64)
        return self.transcribe(data, filename, language, response_format, temperature, model)

    def decode_base64(self, audio_base64: str) -> bytes:
        """Strict base64 (a data: URL prefix and line breaks are allowed)."""
        text = _DATA_URL.sub("", audio_base64.strip(), count=1)
        raw = _WHITESPACE.sub(b"", text.encode("ascii", errors="replace"))
        if math.ceil(len(raw) / 4) * 3 > self._settings.max_audio_bytes + 2:
            raise PayloadTooLarge(
                f"decoded audio would exceed {self._settings.max_audio_bytes} bytes"
            )
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidInput(
                "audio is not valid base64",
                details=[{"loc": ["audio"], "message": str(exc), "type": "invalid_base64"}],
            ) from None

    def convert(
        self,
        data: bytes,
        target_format: str = "wav",
        sample_rate: int | None = None,
        channels: int | None = None,
        filename: str | None = None,
    ) -> ConvertedAudio:
        audio.check_size(data, self._settings.max_audio_bytes)
        _check_extension(filename)
        if sample_rate is not None and not 8000 <= sample_rate <= 48000:
            raise InvalidInput("sample_rate must be between 8000 and 48000")
        limit = self._settings.max_audio_seconds
        info = audio.probe(data)  # undecodable input -> 422 before any encoding work
        if info.duration is not None and info.duration > limit:
            raise PayloadTooLarge(f"audio is longer than the limit of {limit} s")
        converted = audio.convert(
            data, target_format, sample_rate=sample_rate, channels=channels, max_seconds=limit
        )
        return ConvertedAudio(converted, target_format, MIME_TYPES[target_format])

    def estimate_cost(self, duration_seconds: float, model: str | None = None) -> CostEstimate:
        """Price from settings; processing time from the measured real-time factor."""
        if not 0 < duration_seconds <= MAX_COST_DURATION_S:
            raise InvalidInput(f"duration_seconds must be in (0, {MAX_COST_DURATION_S}]")
        price = self._settings.transcription_price_per_minute
        minutes = duration_seconds / 60
        provider = self.provider_name
        if provider == "local":
            factor, minimum, name = LOCAL_REAL_TIME_FACTOR, LOCAL_MIN_PROCESSING_S, LOCAL_MODEL
        else:
            factor, minimum = HOSTED_REAL_TIME_FACTOR, HOSTED_MIN_PROCESSING_S
            name = model or self._model_name()
        return CostEstimate(
            duration_seconds=duration_seconds,
            duration_minutes=round(minutes, 4),
            cost_usd=round(minutes * price, 6),
            price_per_minute=price,
            estimated_processing_seconds=round(max(minimum, duration_seconds * factor), 2),
            model=name,
            provider=provider,
        )

    def formats(self) -> FormatsInfo:
        return FormatsInfo(
            input_formats=INPUT_FORMATS,
            output_formats=OUTPUT_FORMATS,
            convert_formats=tuple(CONVERT_FORMATS),
            max_file_bytes=self._settings.max_audio_bytes,
            max_duration_seconds=self._settings.max_audio_seconds,
        )

    def languages(self) -> list[tuple[str, str]]:
        return language_list()

    def health(self) -> ComponentHealth:
        """ffmpeg present and the provider usable (model assets, or an API key)."""
        name, model = self.provider_name, self._model_name()
        if audio.ffmpeg_path() is None or audio.ffprobe_path() is None:
            return _health("unavailable", name, model, "ffmpeg/ffprobe not installed")
        try:
            ok, detail = self.provider().check()
        except ProviderUnavailable as exc:
            return _health("unavailable", name, model, exc.message)
        return _health("ok" if ok else "unavailable", name, model, detail)

    def _build_provider(self) -> TranscriptionProvider:
        settings = self._settings
        if settings.transcription_provider == "openai":
            from backends.core.transcription.openai_provider import (
                make_openai_transcription_provider,
            )

            return make_openai_transcription_provider(settings)
        return LocalWhisperProvider(
            settings.model_cache_dir,
            self._runtime if self._runtime is not None else InferenceRuntime(settings),
            max_seconds=settings.max_audio_seconds,
            queue_size=settings.transcription_queue_size,
        )

    def _model_name(self) -> str:
        if self._provider is not None:
            return self._provider.model
        if self._settings.transcription_provider == "local":
            return LOCAL_MODEL
        configured = self._settings.transcription_model
        return configured if configured != LOCAL_MODEL else "whisper-1"


def _check_extension(filename: str | None) -> None:
    extension = extension_of(filename)
    if extension is not None and extension not in INPUT_FORMATS:
        raise UnsupportedMediaType(
            f"unsupported audio file type '.{extension}': use one of " + ", ".join(INPUT_FORMATS),
            details=[{"loc": ["filename"], "message": "unsupported type", "type": "invalid_audio"}],
        )


def _health(status: str, provider: str, model: str, detail: str | None) -> ComponentHealth:
    return ComponentHealth(
        status="ok" if status == "ok" else "unavailable",
        component="transcription",
        provider=provider,
        model=model,
        available=status == "ok",
        detail=detail,
    )
