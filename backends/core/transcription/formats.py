"""Render a Transcript as json, verbose_json, text, SRT or WebVTT."""

from __future__ import annotations

import re
from collections.abc import Callable

from backends.core.errors import InvalidInput
from backends.core.transcription.results import RenderedTranscript, Segment, Transcript

OUTPUT_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
MEDIA_TYPES = {
    "json": "application/json",
    "verbose_json": "application/json",
    "text": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
}
_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")


def timestamp(seconds: float, *, separator: str) -> str:
    """``HH:MM:SS<sep>mmm``; SRT uses ',' and WebVTT '.' before the milliseconds."""
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def cues(transcript: Transcript) -> list[Segment]:
    """Segments to show; a transcript without segments becomes one cue over its duration."""
    if transcript.segments:
        return [segment for segment in transcript.segments if segment.text.strip()]
    if not transcript.text.strip():
        return []
    end = transcript.duration if transcript.duration else 0.0
    return [Segment(id=0, start=0.0, end=end, text=transcript.text)]


def as_json(transcript: Transcript) -> dict[str, object]:
    return {
        "text": transcript.text,
        "language": transcript.language,
        "duration": transcript.duration,
        "model": transcript.model,
        "provider": transcript.provider,
    }


def as_verbose_json(transcript: Transcript) -> dict[str, object]:
    body = as_json(transcript)
    body["segments"] = [
        {
            "id": segment.id,
            "start": segment.start,
            "end": segment.end,
            "text": segment.text,
            "avg_logprob": segment.avg_logprob,
            "no_speech_prob": segment.no_speech_prob,
        }
        for segment in transcript.segments
    ]
    return body


def as_text(transcript: Transcript) -> str:
    return transcript.text + "\n" if transcript.text else ""


def as_srt(transcript: Transcript) -> str:
    blocks = []
    for number, segment in enumerate(cues(transcript), start=1):
        start, end = _span(segment)
        text = _one_line(segment.text)
        blocks.append(
            f"{number}\n{timestamp(start, separator=',')} --> "
            f"{timestamp(end, separator=',')}\n{text}\n"
        )
    return "\n".join(blocks)


def as_vtt(transcript: Transcript) -> str:
    parts = ["WEBVTT\n"]
    for segment in cues(transcript):
        start, end = _span(segment)
        # cue text is HTML-like in WebVTT, and "-->" may not appear in it
        text = _one_line(segment.text).replace("&", "&amp;").replace("<", "&lt;")
        text = text.replace(">", "&gt;")
        parts.append(
            f"{timestamp(start, separator='.')} --> {timestamp(end, separator='.')}\n{text}\n"
        )
    return "\n".join(parts)


_RENDERERS: dict[str, Callable[[Transcript], str | dict[str, object]]] = {
    "json": as_json,
    "verbose_json": as_verbose_json,
    "text": as_text,
    "srt": as_srt,
    "vtt": as_vtt,
}


def render(transcript: Transcript, response_format: str) -> RenderedTranscript:
    renderer = _RENDERERS.get(response_format)
    if renderer is None:
        raise InvalidInput(
            f"unsupported response_format '{response_format}': use one of "
            + ", ".join(OUTPUT_FORMATS),
            details=[{"loc": ["response_format"], "message": "unsupported", "type": "enum"}],
        )
    seconds = transcript.duration
    if seconds is None:
        seconds = max((segment.end for segment in transcript.segments), default=0.0)
    return RenderedTranscript(
        response_format, MEDIA_TYPES[response_format], renderer(transcript), seconds
    )


def _span(segment: Segment) -> tuple[float, float]:
    start = max(0.0, segment.start)
    return start, max(start, segment.end)


def _one_line(text: str) -> str:
    """A blank line would end the cue early in both SRT and WebVTT."""
    return _LINE_BREAKS.sub(" ", text.strip())
