"""Transcription: transcribe (multipart and base64), convert, estimate-cost, formats,
languages, health."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backends.core.api.api_request import ApiRequest, ApiResult, Handler, RawResult
from backends.core.api.handlers.convert import component_health
from backends.core.engine import Engine
from backends.core.transcription.results import RenderedTranscript
from shared_schemas import transcription as tr
from shared_schemas import transcription_tools as tt
from shared_schemas.health import ComponentHealth


def _segment(segment: Mapping[str, Any]) -> tr.TranscriptionSegment:
    return tr.TranscriptionSegment(
        id=segment["id"],
        start=segment["start"],
        end=segment["end"],
        text=segment["text"],
        avg_logprob=segment.get("avg_logprob"),
        no_speech_prob=segment.get("no_speech_prob"),
    )


def _duration(body: Mapping[str, Any], segments: list[tr.TranscriptionSegment]) -> float:
    """The contract requires a duration; a provider that reports none gets the last cue end."""
    duration = body.get("duration")
    if duration is not None:
        return float(duration)
    return max((segment.end for segment in segments), default=0.0)


def transcript_result(rendered: RenderedTranscript) -> ApiResult:
    """json/verbose_json -> the response models; text/srt/vtt -> raw text with its type."""
    media_type = tr.TRANSCRIPT_MEDIA_TYPES.get(rendered.response_format)
    if media_type is not None:
        if not isinstance(rendered.body, str):
            raise TypeError(f"{rendered.response_format} transcript rendered as a dict")
        return RawResult(rendered.body.encode("utf-8"), media_type, rendered.audio_seconds)
    if not isinstance(rendered.body, dict):
        raise TypeError(f"{rendered.response_format} transcript rendered as text")
    body = rendered.body
    raw_segments = body.get("segments")
    segments = [_segment(s) for s in raw_segments] if isinstance(raw_segments, list) else []
    fields: dict[str, Any] = {
        "text": body["text"],
        "language": body.get("language"),
        "duration": _duration(body, segments),
        "model": body["model"],
        "provider": body["provider"],
    }
    if rendered.response_format == "verbose_json":
        return tr.VerboseTranscriptionResponse(**fields, segments=segments)
    return tr.TranscriptionResponse(**fields)


def transcribe(engine: Engine, api_request: ApiRequest) -> ApiResult:
    body = api_request.body_as(tr.TranscribeForm)
    rendered = engine.transcription.transcribe(
        body.file,
        filename=api_request.filenames.get("file") or None,
        language=body.language,
        response_format=body.response_format,
        temperature=body.temperature,
        model=body.model,
    )
    return transcript_result(rendered)


def transcribe_base64(engine: Engine, api_request: ApiRequest) -> ApiResult:
    body = api_request.body_as(tr.TranscribeBase64Request)
    rendered = engine.transcription.transcribe_base64(
        body.audio,
        filename=body.filename,
        language=body.language,
        response_format=body.response_format,
        temperature=body.temperature,
        model=body.model,
    )
    return transcript_result(rendered)


def convert(engine: Engine, api_request: ApiRequest) -> RawResult:
    body = api_request.body_as(tt.ConvertForm)
    converted = engine.transcription.convert(
        body.file,
        target_format=body.target_format,
        sample_rate=body.sample_rate,
        channels=body.channels,
        filename=api_request.filenames.get("file") or None,
    )
    # The contract's media type, not the engine's (they differ for m4a: audio/mp4 here).
    return RawResult(converted.data, tt.CONVERT_MEDIA_TYPES[body.target_format])


def estimate_cost(engine: Engine, api_request: ApiRequest) -> tt.EstimateCostResponse:
    body = api_request.body_as(tt.EstimateCostRequest)
    result = engine.transcription.estimate_cost(body.duration_seconds, model=body.model)
    return tt.EstimateCostResponse(
        duration_seconds=result.duration_seconds,
        duration_minutes=result.duration_minutes,
        cost_usd=result.cost_usd,
        price_per_minute=result.price_per_minute,
        estimated_processing_seconds=result.estimated_processing_seconds,
        model=result.model,
        provider=result.provider,
    )


def formats(engine: Engine, api_request: ApiRequest) -> tt.FormatsResponse:
    result = engine.transcription.formats()
    return tt.FormatsResponse(
        input_formats=list(result.input_formats),
        output_formats=list(result.output_formats),
        convert_formats=list(result.convert_formats),
        max_file_bytes=result.max_file_bytes,
        max_duration_seconds=result.max_duration_seconds,
    )


def languages(engine: Engine, api_request: ApiRequest) -> tt.LanguagesResponse:
    # The engine lists Whisper's order (most training data first); the contract sorts by code.
    pairs = sorted(engine.transcription.languages())
    return tt.LanguagesResponse(
        languages=[tt.Language(code=code, name=name) for code, name in pairs]
    )


def health(engine: Engine, api_request: ApiRequest) -> ComponentHealth:
    return component_health(engine.transcription.health())


HANDLERS: dict[str, Handler] = {
    "transcription_transcribe": transcribe,
    "transcription_transcribe_base64": transcribe_base64,
    "transcription_convert": convert,
    "transcription_estimate_cost": estimate_cost,
    "transcription_formats": formats,
    "transcription_languages": languages,
    "transcription_health": health,
}
