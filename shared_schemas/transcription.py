"""Transcription: audio to text from a multipart upload or from base64 JSON."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints
from pydantic.config import JsonDict
from pydantic.json_schema import SkipJsonSchema

from shared_schemas.common import (
    MODEL_FIELD_DESCRIPTION,
    PROVIDER_DESCRIPTION,
    RESULT_MODEL_DESCRIPTION,
    FormModel,
    ModelName,
    ProviderName,
    RequestModel,
    ResponseModel,
    non_blank,
)
from shared_schemas.languages import LanguageCode

ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json"]

MAX_AUDIO_BYTES = 25 * 1024 * 1024
MAX_BASE64_CHARS = 35_000_000
# Whole quads, then an optional padded tail: exactly the strings b64decode(validate=True) takes.
BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"

TRANSCRIPT_MEDIA_TYPES: dict[str, str] = {
    "text": "text/plain",
    "srt": "application/x-subrip",
    "vtt": "text/vtt",
}
"""Content type of each non-JSON response_format (json and verbose_json are application/json)."""

LANGUAGE_DESCRIPTION = "Spoken language (a code from /languages); absent = detect it."
FORMAT_DESCRIPTION = (
    "json: TranscriptionResponse; verbose_json: with segments; "
    "text: text/plain; srt: application/x-subrip; vtt: text/vtt."
)
TEMPERATURE_DESCRIPTION = "Decoding temperature; 0 is deterministic."
FILE_DESCRIPTION = "The audio file (flac, m4a, mp3, mp4, mpeg, mpga, oga, ogg, wav, webm; 25 MiB)."


def drop_default(schema: dict[str, Any]) -> None:
    """Hide `default: null` of form fields whose schema has no null (forms cannot send null)."""
    schema.pop("default", None)


class TranscribeForm(FormModel):
    """Multipart form of /transcribe: the file plus options as form fields."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"file": "RIFF....WAVEfmt ", "language": "en", "response_format": "srt"}]
        }
    )

    file: bytes = Field(description=FILE_DESCRIPTION)
    language: LanguageCode | SkipJsonSchema[None] = Field(
        default=None, description=LANGUAGE_DESCRIPTION, json_schema_extra=drop_default
    )
    response_format: ResponseFormat = Field(default="json", description=FORMAT_DESCRIPTION)
    model: ModelName | SkipJsonSchema[None] = Field(
        default=None, description=MODEL_FIELD_DESCRIPTION, json_schema_extra=drop_default
    )
    temperature: float = Field(default=0.0, ge=0.0, le=1.0, description=TEMPERATURE_DESCRIPTION)


class TranscribeBase64Request(RequestModel):
    """JSON variant of /transcribe: the audio as base64 text."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "audio": "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA=",
                    "filename": "greeting.wav",
                    "language": "en",
                    "response_format": "json",
                }
            ]
        }
    )

    audio: str = Field(
        min_length=4,
        max_length=MAX_BASE64_CHARS,
        pattern=BASE64_PATTERN,
        json_schema_extra={"contentEncoding": "base64"},
        description="Audio bytes, standard base64 with padding, no line breaks (25 MiB decoded).",
    )
    filename: Annotated[str, non_blank(255)] = Field(
        description="Original file name; its extension hints the audio format."
    )
    language: LanguageCode | None = Field(default=None, description=LANGUAGE_DESCRIPTION)
    response_format: ResponseFormat = Field(default="json", description=FORMAT_DESCRIPTION)
    model: ModelName | None = Field(default=None, description=MODEL_FIELD_DESCRIPTION)
    temperature: float = Field(default=0.0, ge=0.0, le=1.0, description=TEMPERATURE_DESCRIPTION)


_TRANSCRIPT: JsonDict = {
    "text": "Hello and welcome to the weekly update.",
    "language": "en",
    "duration": 3.52,
    "model": "whisper-base",
    "provider": "local",
}
_SEGMENT: JsonDict = {
    "id": 0,
    "start": 0.0,
    "end": 3.52,
    "text": "Hello and welcome to the weekly update.",
    "avg_logprob": -0.21,
    "no_speech_prob": 0.01,
}


class TranscriptionResponse(ResponseModel):
    """Transcript (response_format json)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_TRANSCRIPT]})

    text: str = Field(description="The transcript.")
    language: Annotated[str, StringConstraints(max_length=16)] | None = Field(
        description="Language code given or detected; null when unknown."
    )
    duration: float = Field(ge=0.0, description="Audio length in seconds.")
    model: str = Field(description=RESULT_MODEL_DESCRIPTION)
    provider: ProviderName = Field(description=PROVIDER_DESCRIPTION)


class TranscriptionSegment(ResponseModel):
    """One timed piece of the transcript."""

    model_config = ConfigDict(json_schema_extra={"examples": [_SEGMENT]})

    id: int = Field(ge=0, description="Segment number, from 0.")
    start: float = Field(ge=0.0, description="Start, seconds from the beginning.")
    end: float = Field(ge=0.0, description="End, seconds from the beginning.")
    text: str = Field(description="Text spoken in the segment.")
    avg_logprob: float | None = Field(default=None, description="Mean token log-probability.")
    no_speech_prob: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Probability that the segment is silence."
    )


class VerboseTranscriptionResponse(TranscriptionResponse):
    """Transcript with timed segments (response_format verbose_json)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [_TRANSCRIPT | {"segments": [_SEGMENT]}]}
    )

    segments: list[TranscriptionSegment] = Field(
        max_length=100_000, description="Segments in time order."
    )
