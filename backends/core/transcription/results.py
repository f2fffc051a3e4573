"""Transcription results and the provider interface (framework-free)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Segment:
    id: int
    start: float
    end: float
    text: str
    avg_logprob: float | None = None
    no_speech_prob: float | None = None


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    language: str | None
    duration: float | None
    segments: tuple[Segment, ...]
    model: str
    provider: str


@dataclass(frozen=True, slots=True)
class RenderedTranscript:
    """A transcript in the requested response format: a JSON-able dict or a text body."""

    response_format: str
    media_type: str
    body: str | dict[str, object]
    audio_seconds: float = 0.0  # what the request is metered by, whatever the format


@dataclass(frozen=True, slots=True)
class ConvertedAudio:
    data: bytes
    format: str
    media_type: str


@dataclass(frozen=True, slots=True)
class CostEstimate:
    duration_seconds: float
    duration_minutes: float
    cost_usd: float
    price_per_minute: float
    estimated_processing_seconds: float
    model: str
    provider: str


@dataclass(frozen=True, slots=True)
class FormatsInfo:
    input_formats: tuple[str, ...]
    output_formats: tuple[str, ...]
    convert_formats: tuple[str, ...]
    max_file_bytes: int
    max_duration_seconds: int


class TranscriptionProvider(Protocol):
    """One speech-to-text backend; ``language`` is a validated Whisper code or None."""

    provider: str
    model: str

    def transcribe(
        self,
        data: bytes,
        *,
        filename: str | None,
        language: str | None,
        temperature: float,
        model: str | None = None,
    ) -> Transcript: ...

    def check(self) -> tuple[bool, str | None]:
        """Whether it can serve requests now, with a reason when it cannot."""
        ...
