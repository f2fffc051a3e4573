"""Transcription engine: real ffmpeg, the real Whisper base model (loaded once), respx upstream."""

from __future__ import annotations

import base64
import hashlib
import re
import string
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from backends.core.errors import (
    InvalidInput,
    PayloadTooLarge,
    ProviderUnavailable,
    RateLimited,
    UnknownModel,
    UnsupportedMediaType,
    UpstreamError,
    UpstreamTimeout,
)
from backends.core.settings import EngineSettings
from backends.core.transcription import audio, model_assets
from backends.core.transcription.audio_formats import MIME_TYPES
from backends.core.transcription.formats import render, timestamp
from backends.core.transcription.local import LocalWhisperProvider
from backends.core.transcription.openai_provider import make_openai_transcription_provider
from backends.core.transcription.results import Segment, Transcript
from backends.core.transcription.service import LOCAL_REAL_TIME_FACTOR, TranscriptionService
from tests.core import respx_httpx2  # noqa: F401  (registers the "httpcore2" respx mocker)

SENTENCE = "Please remember to buy milk, bread and fresh apples on your way home."
BASE_URL = "https://api.example.test/v1"
SECRET = "sk-test-SECRETKEY-0123456789abcdef"
SRT_TIME = r"\d{2}:\d{2}:\d{2},\d{3}"
VTT_TIME = r"\d{2}:\d{2}:\d{2}\.\d{3}"


def settings(**overrides: Any) -> EngineSettings:
    """Offline settings: explicit values win over the environment and any .env file."""
    base: dict[str, Any] = {"openai_api_key": None, "openai_base_url": None}
    base["openai_max_retries"] = 0
    return EngineSettings(_env_file=None, **{**base, **overrides})  # type: ignore[call-arg]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level Levenshtein distance over the reference length (case/punctuation-blind)."""

    def words(text: str) -> list[str]:
        return text.lower().translate(str.maketrans("", "", string.punctuation)).split()

    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, start=1):
        previous, row[0] = row[0], i
        for j, hyp_word in enumerate(hyp, start=1):
            current = min(row[j] + 1, row[j - 1] + 1, previous + (ref_word != hyp_word))
            previous, row[j] = row[j], current
    return row[len(hyp)] / max(1, len(ref))


# --- session fixtures: one clip, one model load ------------------------------------------


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("speech") / "sentence.wav"
    subprocess.run(["espeak-ng", "-w", str(path), SENTENCE], check=True, timeout=30)
    return path.read_bytes()


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def local_service(cache_dir: Path) -> TranscriptionService:
    return TranscriptionService(settings(model_cache_dir=cache_dir))


@pytest.fixture(scope="session")
def transcribed(local_service: TranscriptionService, speech_wav: bytes) -> dict[str, Any]:
    """verbose_json of the clip; the first call assembles and loads the model (timed)."""
    started = time.perf_counter()
    rendered = local_service.transcribe(speech_wav, "sentence.wav", "en", "verbose_json")
    first = time.perf_counter() - started
    started = time.perf_counter()
    local_service.transcribe(speech_wav, "sentence.wav", "en", "json")
    warm = time.perf_counter() - started
    provider = local_service.provider()
    assert isinstance(provider, LocalWhisperProvider)
    assert isinstance(rendered.body, dict)
    duration = float(rendered.body["duration"])  # type: ignore[arg-type]
    print(  # measured figures for the report (pytest -s shows them)
        f"\nassembly {provider.assembly_seconds:.2f}s, load {provider.load_seconds:.2f}s, "
        f"first call {first:.2f}s, warm call {warm:.2f}s for {duration:.2f}s of audio "
        f"(real-time factor {warm / duration:.2f})"
    )
    return rendered.body


# --- local transcription -----------------------------------------------------------------


def test_transcribes_synthetic_speech(transcribed: dict[str, Any], speech_wav: bytes) -> None:
    assert word_error_rate(SENTENCE, transcribed["text"]) <= 0.2, transcribed["text"]
    assert transcribed["language"] == "en"
    assert (transcribed["model"], transcribed["provider"]) == ("whisper-base", "local")
    expected = audio.probe(speech_wav).duration
    assert expected is not None
    assert transcribed["duration"] == pytest.approx(expected, abs=0.1)


def test_verbose_json_segments(transcribed: dict[str, Any]) -> None:
    segments = transcribed["segments"]
    assert segments and segments[0]["id"] == 0
    for segment in segments:
        assert 0 <= segment["start"] < segment["end"] <= transcribed["duration"] + 0.5
        assert segment["text"]
        assert segment["avg_logprob"] <= 0
        assert 0 <= segment["no_speech_prob"] <= 1


def test_language_autodetect(local_service: TranscriptionService, speech_wav: bytes) -> None:
    rendered = local_service.transcribe(speech_wav, None, None, "json")
    assert isinstance(rendered.body, dict)
    assert rendered.body["language"] == "en"


def _srt_times(body: str) -> list[tuple[str, str]]:
    return re.findall(rf"^({SRT_TIME}) --> ({SRT_TIME})$", body, flags=re.MULTILINE)


def test_srt_and_vtt_outputs(local_service: TranscriptionService, speech_wav: bytes) -> None:
    srt = local_service.transcribe(speech_wav, "a.wav", "en", "srt")
    assert srt.media_type.startswith("application/x-subrip")
    assert isinstance(srt.body, str)
    blocks = srt.body.strip().split("\n\n")
    assert [block.splitlines()[0] for block in blocks] == [str(i + 1) for i in range(len(blocks))]
    times = [t for pair in _srt_times(srt.body) for t in pair]
    assert len(times) == 2 * len(blocks) and times == sorted(times)

    vtt = local_service.transcribe(speech_wav, "a.wav", "en", "vtt")
    assert isinstance(vtt.body, str)
    assert vtt.body.startswith("WEBVTT\n\n")
    cues = re.findall(rf"^({VTT_TIME}) --> ({VTT_TIME})$", vtt.body, flags=re.MULTILINE)
    flat = [t for pair in cues for t in pair]
    assert cues and flat == sorted(flat)

    text = local_service.transcribe(speech_wav, "a.wav", "en", "text")
    assert isinstance(text.body, str) and text.media_type.startswith("text/plain")
    assert word_error_rate(SENTENCE, text.body) <= 0.2


def test_base64_path(local_service: TranscriptionService, speech_wav: bytes) -> None:
    encoded = "data:audio/wav;base64," + base64.b64encode(speech_wav).decode()
    rendered = local_service.transcribe_base64(encoded, "clip.wav", "en", "json")
    assert isinstance(rendered.body, dict)
    assert word_error_rate(SENTENCE, str(rendered.body["text"])) <= 0.2
    with pytest.raises(InvalidInput, match="base64"):
        local_service.transcribe_base64("not base64 at all!!", "clip.wav")


@pytest.mark.parametrize("data", [b"garbage bytes, not audio" * 50, b"\x00" * 4096])
def test_undecodable_audio_is_invalid_input(
    local_service: TranscriptionService, data: bytes
) -> None:
    with pytest.raises(InvalidInput) as caught:
        local_service.transcribe(data, "clip.mp3")
    assert caught.value.status_code == 422
    assert caught.value.details[0]["type"] == "invalid_audio"
    with pytest.raises(InvalidInput):
        local_service.convert(data, "wav")


def test_input_validation(local_service: TranscriptionService, speech_wav: bytes) -> None:
    with pytest.raises(InvalidInput):
        local_service.transcribe(b"", "a.wav")
    with pytest.raises(UnsupportedMediaType):
        local_service.transcribe(speech_wav, "notes.txt")
    with pytest.raises(InvalidInput, match="language"):
        local_service.transcribe(speech_wav, "a.wav", language="xx")
    with pytest.raises(UnknownModel, match="model"):
        local_service.transcribe(speech_wav, "a.wav", model="whisper-large")
    with pytest.raises(InvalidInput, match="response_format"):
        local_service.transcribe(speech_wav, "a.wav", response_format="docx")


def test_size_and_duration_limits(cache_dir: Path, speech_wav: bytes) -> None:
    small = TranscriptionService(settings(model_cache_dir=cache_dir, max_audio_bytes=1000))
    with pytest.raises(PayloadTooLarge):
        small.transcribe(speech_wav, "a.wav")
    with pytest.raises(PayloadTooLarge):
        small.transcribe_base64(base64.b64encode(speech_wav).decode(), "a.wav")
    with pytest.raises(PayloadTooLarge):
        small.convert(speech_wav, "mp3")
    short = TranscriptionService(settings(model_cache_dir=cache_dir, max_audio_seconds=1))
    with pytest.raises(PayloadTooLarge, match="longer"):
        short.transcribe(speech_wav, "a.wav")


def test_subprocess_timeout_is_invalid_input(speech_wav: bytes) -> None:
    with pytest.raises(InvalidInput, match="within"):
        audio.decode_pcm(speech_wav * 50, max_seconds=3600, timeout=0.001)


# --- conversion --------------------------------------------------------------------------


def test_convert_round_trip(local_service: TranscriptionService, speech_wav: bytes) -> None:
    original = audio.probe(speech_wav).duration
    mp3 = local_service.convert(speech_wav, "mp3")
    assert (mp3.media_type, mp3.data[:3] in (b"ID3", b"\xff\xfb")) == ("audio/mpeg", True)
    wav = local_service.convert(mp3.data, "wav", filename="clip.mp3")
    assert wav.data[:4] == b"RIFF"
    back = audio.probe(wav.data).duration
    assert original is not None and back is not None
    assert back == pytest.approx(original, abs=0.2)


@pytest.mark.parametrize("target", ["flac", "ogg", "m4a", "webm"])
def test_convert_formats_with_rate_and_channels(
    local_service: TranscriptionService, speech_wav: bytes, target: str
) -> None:
    converted = local_service.convert(speech_wav, target, sample_rate=16000, channels=2)
    info = audio.probe(converted.data)
    # Opus always decodes at 48 kHz; WebM records that, the encoder input rate is internal
    assert (info.sample_rate, info.channels) == (48000 if target == "webm" else 16000, 2)
    assert converted.media_type == MIME_TYPES[target]


def test_convert_rejects_rates_the_codec_lacks(
    local_service: TranscriptionService, speech_wav: bytes
) -> None:
    with pytest.raises(InvalidInput, match="44100"):
        local_service.convert(speech_wav, "webm", sample_rate=44100)
    with pytest.raises(InvalidInput, match="target format"):
        local_service.convert(speech_wav, "aiff")


# --- model assets ------------------------------------------------------------------------


def test_model_assembly_verifies_and_rejoins(tmp_path: Path) -> None:
    first = model_assets.ensure_model(tmp_path)
    model = first.path / model_assets.MODEL_FILE
    assert first.assembled and model.stat().st_size == model_assets.MODEL_SIZE
    assert model_assets.ensure_model(tmp_path).assembled is False
    with model.open("r+b") as handle:  # flip one byte in the middle
        handle.seek(model_assets.MODEL_SIZE // 2)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0xFF]))
    (first.path / "config.json").write_text("{}")
    assert model_assets.ensure_model(tmp_path).assembled is True
    assert hashlib.sha256(model.read_bytes()).hexdigest() == model_assets.MODEL_SHA256
    assert not [p for p in first.path.iterdir() if p.name.endswith(".tmp")]
    assert model_assets.assets_present(tmp_path)


# --- formats, languages, cost, health ----------------------------------------------------


def test_timestamps_and_cue_rendering() -> None:
    assert timestamp(1.5, separator=",") == "00:00:01,500"
    assert timestamp(3661.0019, separator=".") == "01:01:01.002"
    transcript = Transcript(
        text="a <b> & c --> d",
        language="en",
        duration=2.0,
        segments=(),
        model="m",
        provider="p",
    )
    vtt = render(transcript, "vtt").body
    assert vtt == "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\na &lt;b&gt; &amp; c --&gt; d\n"
    two = Transcript(
        "x y",
        "en",
        4.0,
        (Segment(0, 0.0, 1.25, "x"), Segment(1, 1.25, 3.9, "line\n\nbreak")),
        "m",
        "p",
    )
    assert render(two, "srt").body == (
        "1\n00:00:00,000 --> 00:00:01,250\nx\n\n2\n00:00:01,250 --> 00:00:03,900\nline break\n"
    )


def test_formats_languages_cost(local_service: TranscriptionService) -> None:
    formats = local_service.formats()
    assert len(formats.input_formats) == 10 and "mpga" in formats.input_formats
    assert formats.output_formats == ("json", "text", "srt", "vtt", "verbose_json")
    assert set(formats.convert_formats) == {"mp3", "wav", "flac", "ogg", "m4a", "webm"}
    codes = dict(local_service.languages())
    assert len(codes) == 99 and codes["en"] == "English"
    assert {"es", "fr", "de", "it", "pt", "nl", "ru", "ja", "ko", "zh"} <= set(codes)

    cost = local_service.estimate_cost(90)
    assert cost.duration_minutes == 1.5
    assert cost.cost_usd == pytest.approx(1.5 * 0.006)
    assert cost.price_per_minute == 0.006
    assert cost.estimated_processing_seconds == pytest.approx(90 * LOCAL_REAL_TIME_FACTOR)
    assert (cost.model, cost.provider) == ("whisper-base", "local")
    with pytest.raises(InvalidInput):
        local_service.estimate_cost(0)


def test_health(local_service: TranscriptionService, transcribed: dict[str, Any]) -> None:
    health = local_service.health()
    assert (health.status, health.available, health.provider) == ("ok", True, "local")
    keyless = TranscriptionService(settings(transcription_provider="openai")).health()
    assert (keyless.status, keyless.available) == ("unavailable", False)
    assert "OPENAI_API_KEY" in (keyless.detail or "")


# --- hosted provider (respx at the HTTP layer) -------------------------------------------


@pytest.fixture
def upstream() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE_URL, using="httpcore2", assert_all_called=False) as router:
        yield router


def hosted_service() -> TranscriptionService:
    return TranscriptionService(
        settings(transcription_provider="openai", openai_api_key=SECRET, openai_base_url=BASE_URL)
    )


def test_openai_factory_needs_a_key() -> None:
    with pytest.raises(ProviderUnavailable, match="OPENAI_API_KEY"):
        make_openai_transcription_provider(settings(transcription_provider="openai"))


def test_openai_provider_sends_multipart(upstream: respx.MockRouter, speech_wav: bytes) -> None:
    route = upstream.post("/audio/transcriptions").respond(
        json={
            "text": " Hello there. ",
            "language": "english",
            "duration": 3.8,
            "segments": [
                {"id": 0, "start": 0.0, "end": 1.5, "text": " Hello", "avg_logprob": -0.2},
                {"id": 1, "start": 1.5, "end": 3.8, "text": " there.", "no_speech_prob": 0.01},
            ],
        }
    )
    rendered = hosted_service().transcribe(speech_wav, "clip.wav", "en", "verbose_json", 0.2)
    request = route.calls.last.request
    assert request.headers["authorization"] == f"Bearer {SECRET}"
    assert request.headers["content-type"].startswith("multipart/form-data")
    body = request.content
    assert b'name="model"\r\n\r\nwhisper-1' in body
    assert b'name="response_format"\r\n\r\nverbose_json' in body
    assert b'name="language"\r\n\r\nen' in body
    assert b'filename="clip.wav"' in body and speech_wav[:64] in body
    assert isinstance(rendered.body, dict)
    assert rendered.body["text"] == "Hello there."
    assert rendered.body["language"] == "en"
    assert (rendered.body["model"], rendered.body["provider"]) == ("whisper-1", "openai")
    segments = rendered.body["segments"]
    assert isinstance(segments, list) and segments[1]["text"] == "there."


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx.Response(401, json={"error": {"message": f"bad key {SECRET}"}}), UpstreamError),
        (httpx.Response(429, json={"error": {"message": "slow down"}}), RateLimited),
        (httpx.Response(500, json={"error": {"message": "boom"}}), UpstreamError),
        (httpx.ReadTimeout("timed out"), UpstreamTimeout),
    ],
)
def test_openai_errors_are_mapped(
    upstream: respx.MockRouter, speech_wav: bytes, response: Any, error: type[Exception]
) -> None:
    route = upstream.post("/audio/transcriptions")
    if isinstance(response, Exception):
        route.side_effect = response
    else:
        route.return_value = response
    with pytest.raises(error) as caught:
        hosted_service().transcribe(speech_wav, "clip.wav")
    assert SECRET not in str(caught.value)


def test_openai_names_unnamed_uploads(upstream: respx.MockRouter, speech_wav: bytes) -> None:
    route = upstream.post("/audio/transcriptions").respond(json={"text": "hi"})
    rendered = hosted_service().transcribe(speech_wav, None, None, "json")
    assert b'filename="audio.wav"' in route.calls.last.request.content
    assert isinstance(rendered.body, dict) and rendered.body["duration"] is None


def test_openai_path_rejects_garbage_before_upload(upstream: respx.MockRouter) -> None:
    route = upstream.post("/audio/transcriptions").respond(json={"text": "never"})
    with pytest.raises(InvalidInput):
        hosted_service().transcribe(b"garbage bytes" * 100, "clip.mp3")
    assert not route.called
