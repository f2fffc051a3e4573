"""Speech to text: offline Whisper base (faster-whisper) or a hosted OpenAI-compatible API."""

from backends.core.transcription.results import Segment, Transcript, TranscriptionProvider
from backends.core.transcription.service import TranscriptionService

__all__ = ["Segment", "Transcript", "TranscriptionProvider", "TranscriptionService"]
