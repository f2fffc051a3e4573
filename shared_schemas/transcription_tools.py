"""Transcription helpers: audio conversion, cost estimate, formats and languages."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field
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
)
from shared_schemas.languages import LanguageCode
from shared_schemas.transcription import FILE_DESCRIPTION, ResponseFormat, drop_default

# int with bounds (not Literal[1, 2]): form fields arrive as text and "1" must parse.
SampleRate = Annotated[int, Field(ge=8000, le=48_000)]
Channels = Annotated[int, Field(ge=1, le=2)]
ConvertFormat = Literal["mp3", "wav", "flac", "ogg", "m4a", "webm"]

INPUT_FORMATS = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")
OUTPUT_FORMATS: tuple[ResponseFormat, ...] = ("json", "text", "srt", "vtt", "verbose_json")
CONVERT_MEDIA_TYPES: dict[str, str] = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "m4a": "audio/mp4",
    "webm": "audio/webm",
}
"""Content type of the /convert response for each target_format."""

MAX_DURATION_SECONDS = 86_400


class ConvertForm(FormModel):
    """Multipart form of /convert: the file plus the target format as form fields."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"file": "ID3....", "target_format": "wav", "sample_rate": 16000, "channels": 1}
            ]
        }
    )

    file: bytes = Field(description=FILE_DESCRIPTION)
    target_format: ConvertFormat = Field(default="wav", description="Output container/codec.")
    sample_rate: SampleRate | SkipJsonSchema[None] = Field(
        default=None,
        description="Output sample rate in Hz; absent = keep.",
        json_schema_extra=drop_default,
    )
    channels: Channels | SkipJsonSchema[None] = Field(
        default=None,
        description="1 (mono) or 2 (stereo); absent = keep.",
        json_schema_extra=drop_default,
    )


class EstimateCostRequest(RequestModel):
    """Audio length to price."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"duration_seconds": 754.2}]})

    duration_seconds: float = Field(
        gt=0.0, le=MAX_DURATION_SECONDS, description="Audio length in seconds (0 < d <= 86 400)."
    )
    model: ModelName | None = Field(default=None, description=MODEL_FIELD_DESCRIPTION)


class EstimateCostResponse(ResponseModel):
    """Cost and processing-time estimate."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "duration_seconds": 754.2,
                    "duration_minutes": 12.57,
                    "cost_usd": 0.0754,
                    "price_per_minute": 0.006,
                    "estimated_processing_seconds": 120.7,
                    "model": "whisper-base",
                    "provider": "local",
                }
            ]
        }
    )

    duration_seconds: float = Field(gt=0.0, description="Audio length in seconds (echo).")
    duration_minutes: float = Field(ge=0.0, description="Audio length in minutes.")
    cost_usd: float = Field(ge=0.0, description="Estimated price in US dollars.")
    price_per_minute: float = Field(ge=0.0, description="Price per audio minute in US dollars.")
    estimated_processing_seconds: float = Field(ge=0.0, description="Expected wall time.")
    model: str = Field(description=RESULT_MODEL_DESCRIPTION)
    provider: ProviderName = Field(description=PROVIDER_DESCRIPTION)


class FormatsResponse(ResponseModel):
    """Accepted inputs, available outputs and limits."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "input_formats": list(INPUT_FORMATS),
                    "output_formats": list(OUTPUT_FORMATS),
                    "convert_formats": list(CONVERT_MEDIA_TYPES),
                    "max_file_bytes": 26_214_400,
                    "max_duration_seconds": MAX_DURATION_SECONDS,
                }
            ]
        }
    )

    input_formats: list[str] = Field(max_length=32, description="Audio file extensions accepted.")
    output_formats: list[ResponseFormat] = Field(
        max_length=5, description="Values of response_format."
    )
    convert_formats: list[ConvertFormat] = Field(
        max_length=6, description="Values of target_format for /convert."
    )
    max_file_bytes: int = Field(ge=1, description="Largest upload in bytes.")
    max_duration_seconds: int = Field(ge=1, description="Longest audio accepted, in seconds.")


class Language(ResponseModel):
    """A language Whisper recognises."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"code": "en", "name": "English"}]})

    code: LanguageCode = Field(description="Code to pass as `language`.")
    name: str = Field(description="English name.")


class LanguagesResponse(ResponseModel):
    """Every recognised language, by code."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"languages": [{"code": "de", "name": "German"}, {"code": "en", "name": "English"}]}
            ]
        }
    )

    languages: list[Language] = Field(max_length=200, description="Languages sorted by code.")
