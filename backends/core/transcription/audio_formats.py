"""Accepted input formats, MIME types and the encoder settings of each convert target."""

from __future__ import annotations

from dataclasses import dataclass

# Reference section 5: the ten accepted input formats and their MIME types.
INPUT_FORMATS = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")
MIME_TYPES = {
    "flac": "audio/flac",
    "m4a": "audio/m4a",
    "mp3": "audio/mpeg",
    "mpeg": "audio/mpeg",
    "mpga": "audio/mpeg",
    "mp4": "audio/mp4",
    "oga": "audio/ogg",
    "ogg": "audio/ogg",
    "wav": "audio/wav",
    "webm": "audio/webm",
}
DEFAULT_MIME = "audio/mpeg"  # the reference's fallback for unknown extensions

# ffmpeg demuxers allowed to read uploads: audio containers only. Playlist/concat demuxers
# (hls, concat, ...) could make ffmpeg open URLs or local files named inside the upload.
DEMUXERS = "wav,mp3,flac,ogg,mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,aac,mpeg"
# ISO-BMFF (mp4/m4a/mov) box types seen at offset 4: these need a seekable input.
ISO_BMFF_BOXES = frozenset({b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"})


@dataclass(frozen=True, slots=True)
class OutputFormat:
    codec_args: tuple[str, ...]
    sample_rates: frozenset[int] | None  # None: any rate the contract allows
    seekable_output: bool = False  # the muxer rewrites its header at the end


_COMMON_RATES = frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000})
CONVERT_FORMATS: dict[str, OutputFormat] = {
    "mp3": OutputFormat(("-c:a", "libmp3lame", "-q:a", "2", "-f", "mp3"), _COMMON_RATES),
    "wav": OutputFormat(("-c:a", "pcm_s16le", "-f", "wav"), None),
    "flac": OutputFormat(("-c:a", "flac", "-f", "flac"), None),
    "ogg": OutputFormat(("-c:a", "libvorbis", "-q:a", "4", "-f", "ogg"), None),
    "m4a": OutputFormat(
        ("-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", "-f", "ipod"),
        _COMMON_RATES,
        seekable_output=True,
    ),
    # Opus encodes only these rates (and always decodes at 48 kHz)
    "webm": OutputFormat(
        ("-c:a", "libopus", "-b:a", "96k", "-f", "webm"),
        frozenset({8000, 12000, 16000, 24000, 48000}),
    ),
}


def extension_of(filename: str | None) -> str | None:
    if not filename or "." not in filename:
        return None
    return filename.rsplit(".", 1)[-1].strip().lower() or None


def mime_type_for(filename: str | None) -> str:
    return MIME_TYPES.get(extension_of(filename) or "", DEFAULT_MIME)
