"""ffmpeg/ffprobe helpers: probe, decode to 16 kHz mono float32, convert between formats.

Every subprocess has a timeout (``subprocess.run`` kills the child when it expires), so a
hostile or broken file can never hang a worker. Inputs are limited to audio demuxers and
the pipe/file protocols: playlists (HLS, concat) that could make ffmpeg open URLs or local
files are refused. Input goes through stdin, except MP4-family files, which need a
seekable file (their index often sits at the end).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from backends.core.errors import InvalidInput, PayloadTooLarge, ProviderUnavailable
from backends.core.transcription.audio_formats import (
    CONVERT_FORMATS,
    DEMUXERS,
    ISO_BMFF_BOXES,
)

SAMPLE_RATE = 16_000
DEFAULT_TIMEOUT_S = 120.0
PROBE_TIMEOUT_S = 20.0

_ERROR_PREFIX = re.compile(r"^(?:pipe:\d|file:\S+?):\s*")
_PROBE_FIELDS = "format=duration,format_name:stream=sample_rate,channels"
_PCM_OUTPUT = ["-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_f32le", "-f", "f32le"]
_FFMPEG_QUIET = ["-nostats", "-hide_banner", "-v", "error"]
_NO_EXTRA_STREAMS = ["-vn", "-sn", "-dn"]


@dataclass(frozen=True, slots=True)
class AudioInfo:
    duration: float | None
    format_name: str
    sample_rate: int | None
    channels: int | None


def ffmpeg_path() -> str | None:
    return shutil.which("ffmpeg")


def ffprobe_path() -> str | None:
    return shutil.which("ffprobe")


def check_size(data: bytes, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"audio is {len(data)} bytes; the limit is {max_bytes} bytes "
            f"({max_bytes / 1_048_576:.0f} MiB)"
        )
    if not data:
        raise InvalidInput("the audio file is empty", details=[_detail("empty audio file")])


def probe(data: bytes, *, timeout: float = PROBE_TIMEOUT_S) -> AudioInfo:
    """Container, duration and first audio stream of ``data`` (ffprobe on a temp file)."""
    binary = _require("ffprobe", ffprobe_path())
    with _temp_input(data, always=True) as (input_args, _):
        fields_args = ["-select_streams", "a:0", "-show_entries", _PROBE_FIELDS]
        command = [binary, "-v", "error", *input_args, *fields_args, "-of", "default=nw=1"]
        result = _run(command, stdin=None, timeout=timeout)
    fields = dict(line.split("=", 1) for line in result.decode().splitlines() if "=" in line)
    if "sample_rate" not in fields:
        raise InvalidInput("the file contains no audio stream", details=[_detail("no audio")])
    return AudioInfo(
        duration=_number(fields.get("duration")),
        format_name=fields.get("format_name", ""),
        sample_rate=_integer(fields.get("sample_rate")),
        channels=_integer(fields.get("channels")),
    )


def decode_pcm(
    data: bytes, *, max_seconds: float, timeout: float = DEFAULT_TIMEOUT_S
) -> npt.NDArray[np.float32]:
    """Decode any supported input to 16 kHz mono float32 samples in [-1, 1]."""
    binary = _require("ffmpeg", ffmpeg_path())
    with _temp_input(data) as (input_args, stdin):
        # decode a little past the limit: enough to tell "too long" without holding it all
        limit = ["-t", f"{max_seconds + 1:.3f}"]
        command = [binary, *_FFMPEG_QUIET, *input_args, *_NO_EXTRA_STREAMS, *limit]
        raw = _run([*command, *_PCM_OUTPUT, "pipe:1"], stdin=stdin, timeout=timeout)
    samples = np.frombuffer(raw, dtype="<f4").astype(np.float32, copy=False)
    if samples.size == 0:
        raise InvalidInput("the file contains no decodable audio", details=[_detail("no audio")])
    if samples.size > max_seconds * SAMPLE_RATE:
        raise PayloadTooLarge(f"audio is longer than the limit of {max_seconds:g} seconds")
    return samples


def convert(
    data: bytes,
    target_format: str,
    *,
    sample_rate: int | None = None,
    channels: int | None = None,
    max_seconds: float = 3600.0,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> bytes:
    """Re-encode ``data`` as ``target_format`` (optionally resampled / re-channelled)."""
    spec = CONVERT_FORMATS.get(target_format)
    if spec is None:
        allowed = ", ".join(CONVERT_FORMATS)
        raise InvalidInput(f"unsupported target format '{target_format}': use one of {allowed}")
    if sample_rate is not None and spec.sample_rates and sample_rate not in spec.sample_rates:
        rates = ", ".join(str(rate) for rate in sorted(spec.sample_rates))
        raise InvalidInput(
            f"{target_format} cannot be encoded at {sample_rate} Hz; use one of {rates}",
            details=[{"loc": ["sample_rate"], "message": "unsupported", "type": "value_error"}],
        )
    if channels is not None and channels not in (1, 2):
        raise InvalidInput("channels must be 1 or 2")
    binary = _require("ffmpeg", ffmpeg_path())
    # -t is a backstop against decompression bombs; callers check the duration first
    options = [*_NO_EXTRA_STREAMS, "-map_metadata", "-1", "-t", f"{max_seconds:.3f}"]
    if sample_rate is not None:
        options += ["-ar", str(sample_rate)]
    if channels is not None:
        options += ["-ac", str(channels)]
    with _temp_input(data) as (input_args, stdin), tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / f"out.{target_format}" if spec.seekable_output else None
        command = [binary, *_FFMPEG_QUIET, *input_args, *options, *spec.codec_args, "-y"]
        encoded = _run(
            [*command, str(output) if output else "pipe:1"], stdin=stdin, timeout=timeout
        )
        return output.read_bytes() if output else encoded


@contextmanager
def _temp_input(data: bytes, *, always: bool = False) -> Iterator[tuple[list[str], bytes | None]]:
    """ffmpeg input arguments plus what to write to stdin (None when reading a temp file)."""
    guard = ["-format_whitelist", DEMUXERS]
    if not always and data[4:8] not in ISO_BMFF_BOXES:
        yield [*guard, "-protocol_whitelist", "pipe", "-i", "pipe:0"], data
        return
    with tempfile.NamedTemporaryFile(prefix="audio-", suffix=".bin") as handle:
        handle.write(data)
        handle.flush()
        yield [*guard, "-protocol_whitelist", "file", "-i", f"file:{handle.name}"], None


def _run(command: Sequence[str], *, stdin: bytes | None, timeout: float) -> bytes:
    try:
        completed = subprocess.run(
            list(command),
            input=stdin if stdin is not None else b"",
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise InvalidInput(
            f"the audio could not be processed within {timeout:g} seconds",
            details=[_detail("processing timed out")],
        ) from exc
    if completed.returncode != 0:
        raise InvalidInput(
            f"the file could not be decoded as audio: {_last_error(completed.stderr)}",
            details=[_detail(_last_error(completed.stderr))],
        )
    return completed.stdout


def _last_error(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    if not lines:
        return "unknown format"
    # drop "[demuxer @ 0x...]" and "pipe:0: " / "file:/tmp/...: " prefixes (no paths leak)
    message = _ERROR_PREFIX.sub("", lines[-1].split("] ", 1)[-1])
    return message.strip()[:200] or "unknown format"


def _detail(message: str) -> dict[str, object]:
    return {"loc": ["file"], "message": message, "type": "invalid_audio"}


def _require(name: str, path: str | None) -> str:
    if path is None:
        raise ProviderUnavailable(f"{name} is not installed (apt-get install ffmpeg)")
    return path


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:  # ffprobe prints N/A when it cannot tell
        return None


def _integer(text: str | None) -> int | None:
    value = _number(text)
    return int(value) if value is not None else None
