"""Offline transcription: Whisper base (CTranslate2 int8) through faster-whisper on the CPU."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from backends.core.transcription import audio, model_assets
from backends.core.transcription.languages import normalise_language
from backends.core.transcription.results import Segment, Transcript

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

LOCAL_MODEL = "whisper-base"
# OpenAI semantics: temperature 0 means "start greedy, raise it when decoding fails".
_FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


class LocalWhisperProvider:
    """Loads the model lazily, once per process; transcription calls may run concurrently."""

    provider = "local"
    model = LOCAL_MODEL

    def __init__(
        self,
        cache_dir: Path,
        *,
        max_seconds: float,
        cpu_threads: int = 2,
        beam_size: int = 5,
        decode_timeout_s: float = audio.DEFAULT_TIMEOUT_S,
    ) -> None:
        self._cache_dir = cache_dir
        self._max_seconds = max_seconds
        self._cpu_threads = cpu_threads
        self._beam_size = beam_size
        self._decode_timeout_s = decode_timeout_s
        self._lock = threading.Lock()
        self._model: WhisperModel | None = None
        self.assembly_seconds: float | None = None
        self.load_seconds: float | None = None

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> WhisperModel:
        """Assemble (first run only), verify and load the model; later calls return it."""
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is None:
                assembled = model_assets.ensure_model(self._cache_dir)
                self.assembly_seconds = assembled.seconds
                started = time.perf_counter()
                from faster_whisper import WhisperModel  # heavy import, only when needed

                self._model = WhisperModel(
                    str(assembled.path),
                    device="cpu",
                    compute_type="int8",
                    cpu_threads=self._cpu_threads,
                    local_files_only=True,
                )
                self.load_seconds = time.perf_counter() - started
        return self._model

    def transcribe(
        self,
        data: bytes | npt.NDArray[np.float32],
        *,
        filename: str | None = None,
        language: str | None = None,
        temperature: float = 0.0,
        model: str | None = None,
        beam_size: int | None = None,
    ) -> Transcript:
        """Transcribe encoded audio bytes or 16 kHz mono float32 samples."""
        code = normalise_language(language)
        if isinstance(data, bytes):
            pcm = audio.decode_pcm(
                data, max_seconds=self._max_seconds, timeout=self._decode_timeout_s
            )
        else:
            pcm = data
        whisper = self.load()
        temperatures = _FALLBACK_TEMPERATURES if temperature <= 0 else (float(temperature),)
        segments_iter, info = whisper.transcribe(
            pcm,
            language=code,
            task="transcribe",
            beam_size=beam_size or self._beam_size,
            temperature=list(temperatures),
            vad_filter=False,
        )
        # the iterator does the decoding; materialise it while the audio is in memory
        decoded = list(segments_iter)
        segments = tuple(
            Segment(
                id=index,
                start=round(float(segment.start), 3),
                end=round(float(segment.end), 3),
                text=segment.text.strip(),
                avg_logprob=round(float(segment.avg_logprob), 4),
                no_speech_prob=round(float(segment.no_speech_prob), 4),
            )
            for index, segment in enumerate(decoded)
        )
        return Transcript(
            # Whisper's tokens carry their own leading spaces (none for CJK): join as is
            text="".join(segment.text for segment in decoded).strip(),
            language=info.language,
            duration=round(float(info.duration), 3),
            segments=segments,
            model=self.model,
            provider=self.provider,
        )

    def check(self) -> tuple[bool, str | None]:
        if audio.ffmpeg_path() is None:
            return False, "ffmpeg is not installed"
        if self.loaded or model_assets.assets_present(self._cache_dir):
            return True, None
        if model_assets.packages_installed():
            return True, "model not assembled yet (first transcription assembles it)"
        return False, "the whisper-base data packages are not installed"
