"""Offline transcription: Whisper base (CTranslate2 int8) through faster-whisper on the CPU."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from backends.core.inference.runtime import InferenceRuntime
from backends.core.transcription import audio, model_assets
from backends.core.transcription.languages import normalise_language
from backends.core.transcription.results import Segment, Transcript

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

LOCAL_MODEL = "whisper-base"
# OpenAI semantics: temperature 0 means "start greedy, raise it when decoding fails".
_FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass(frozen=True, slots=True)
class WhisperJob:
    """One decoded recording and how to transcribe it: the runtime's unit of work."""

    pcm: npt.NDArray[np.float32]
    language: str | None
    temperatures: tuple[float, ...]
    beam_size: int


class LocalWhisperProvider:
    """Loads the model lazily, once per process. Callers decode their audio in their own
    thread; the model runs in the runtime's queue, one recording at a time (Whisper does
    not batch here), with the runtime's threads instead of a set per concurrent call."""

    provider = "local"
    model = LOCAL_MODEL
    name = LOCAL_MODEL  # the runtime's name for the model

    def __init__(
        self,
        cache_dir: Path,
        runtime: InferenceRuntime,
        *,
        max_seconds: float,
        queue_size: int,
        beam_size: int = 5,
        decode_timeout_s: float = audio.DEFAULT_TIMEOUT_S,
    ) -> None:
        self._cache_dir = cache_dir
        self._max_seconds = max_seconds
        self._cpu_threads = runtime.threads
        self._beam_size = beam_size
        self._decode_timeout_s = decode_timeout_s
        self._lock = threading.Lock()
        self._model: WhisperModel | None = None
        self.assembly_seconds: float | None = None
        self.load_seconds: float | None = None
        self._queue = runtime.queue(self, max_batch_size=1, queue_size=queue_size, bound_wait=False)

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
        temperatures = _FALLBACK_TEMPERATURES if temperature <= 0 else (float(temperature),)
        job = WhisperJob(pcm, code, temperatures, beam_size or self._beam_size)
        (transcript,) = self._queue.run([job]).outputs
        return transcript

    def prepare(self, job: WhisperJob) -> tuple[WhisperJob, int]:
        """The runtime's preparation step: nothing left to do (decoded by the caller)."""
        return job, 1

    def run(self, batch: list[WhisperJob]) -> list[Transcript]:
        """The runtime's model call (batches of one)."""
        return [self._transcribe_job(job) for job in batch]

    def _transcribe_job(self, job: WhisperJob) -> Transcript:
        whisper = self.load()
        segments_iter, info = whisper.transcribe(
            job.pcm,
            language=job.language,
            task="transcribe",
            beam_size=job.beam_size,
            temperature=list(job.temperatures),
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
