"""The engine: every service one backend process needs, built once from typed settings.

Models load lazily on first use; the vector store and the calibration
history connect in ``start`` so a misconfigured database fails at start-up, with the
message the store gives (e.g. the missing vector extension and both ways out). A server
process that may boot during an outage (a gunicorn worker respawned while Postgres is
away) starts with ``tolerate_outage``: it serves what needs no store and connects the
store in the background.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from psycopg_pool import ConnectionPool

from backends.core.analysis.service import AnalysisService
from backends.core.complexity.calibration import CalibrationHistory, InMemoryCalibrationHistory
from backends.core.complexity.pg_history import PostgresCalibrationHistory
from backends.core.complexity.service import ComplexityService
from backends.core.embeddings.registry import EmbeddingRegistry
from backends.core.embeddings.service import EmbeddingService
from backends.core.errors import ProviderUnavailable, StoreUnreachable
from backends.core.inference.runtime import InferenceRuntime
from backends.core.llm.base import LLMProvider
from backends.core.llm.factory import build_llm_provider
from backends.core.rag.service import RagService
from backends.core.settings import EngineSettings
from backends.core.transcription.service import TranscriptionService
from backends.core.vectorstore.base import VectorStore
from backends.core.vectorstore.factory import build_vector_store

logger = logging.getLogger(__name__)
# Between two attempts to connect a store that was unreachable at start-up.
STORE_RETRY_S = 2.0
# A complexity request waits this long at most for a pooled history connection.
HISTORY_ACQUIRE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class ReadinessCheck:
    ok: bool
    detail: str | None
    required: bool = True


class Engine:
    """Holds the services; thread-safe (backends call it from worker threads)."""

    def __init__(self, settings: EngineSettings, service_name: str) -> None:
        self.settings = settings
        self.service_name = service_name
        # Every local model of this process runs in here: one queue and one worker each.
        self.inference = InferenceRuntime(settings)
        self.embedding_registry = EmbeddingRegistry(settings, self.inference)
        self.llm: LLMProvider | None = build_llm_provider(settings, self.inference)
        self.embeddings = EmbeddingService(self.embedding_registry)
        self.analysis = AnalysisService(self.embedding_registry, self.llm)
        self.transcription = TranscriptionService(settings, runtime=self.inference)
        self._history_pool: ConnectionPool | None = None
        self._store: VectorStore | None = None
        self._rag: RagService | None = None
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._store_error: str | None = None
        self.complexity = ComplexityService(InMemoryCalibrationHistory())

    def start(self, *, tolerate_outage: bool = False) -> None:
        """Connect the vector store and the shared calibration history (fails fast).

        With ``tolerate_outage``, a store that cannot be reached (StoreUnreachable, not a
        misconfiguration) does not fail the start: a thread connects it once it answers,
        and until then store requests get a prompt 503.
        """
        try:
            self._store = build_vector_store(self.settings)
        except StoreUnreachable as exc:
            if not tolerate_outage:
                raise
            logger.warning("vector store unreachable at start-up, connecting later: %s", exc)
            self._store_error = str(exc)
            threading.Thread(target=self._connect_store, name="store-connect", daemon=True).start()
        self.complexity = ComplexityService(self._calibration_history())

    def _connect_store(self) -> None:
        while not self._closed.wait(STORE_RETRY_S):
            try:
                store = build_vector_store(self.settings)
            except StoreUnreachable as exc:
                self._store_error = str(exc)
                continue
            except Exception as exc:  # e.g. the vector extension missing: say so, stop
                self._store_error = str(exc)
                logger.exception("the vector store cannot be used")
                return
            with self._lock:
                closed = self._closed.is_set()
                if not closed:
                    self._store = store
            if closed:
                store.close()
            else:
                logger.info("vector store connected")
            return

    def _calibration_history(self) -> CalibrationHistory:
        if not self.settings.database_url:
            return InMemoryCalibrationHistory()
        self._history_pool = ConnectionPool(
            self.settings.database_url,
            min_size=1,
            max_size=2,
            timeout=HISTORY_ACQUIRE_TIMEOUT_S,
            # a frozen server never answers the startup: reconnects must not wait forever
            kwargs={"connect_timeout": 5},
            open=True,
        )
        return PostgresCalibrationHistory(
            self._history_pool, self.service_name, self.settings.store_query_timeout_s
        )

    @property
    def rag(self) -> RagService:
        """RAG over the default embedding model (created on first use)."""
        with self._lock:
            if self._store is None:
                raise ProviderUnavailable(self._not_connected())
            if self._rag is None:
                self._rag = RagService(self._store, self.embedding_registry.resolve(None), self.llm)
            return self._rag

    def readiness(self) -> dict[str, ReadinessCheck]:
        """Engine-side checks: vector store reachable; optional LLM reported, not required."""
        checks: dict[str, ReadinessCheck] = {}
        try:
            if self._store is None:
                raise ProviderUnavailable(self._not_connected())
            self._store.ping()
            checks["vector_store"] = ReadinessCheck(True, self.settings.resolved_vector_store)
        except Exception as exc:
            checks["vector_store"] = ReadinessCheck(False, f"{type(exc).__name__}: {exc}")
        # "<provider>: <model>": the gateway's /v1/models lists the chat model from it
        checks["llm"] = ReadinessCheck(
            self.llm is not None,
            f"{self.llm.provider}: {self.llm.default_model}"
            if self.llm is not None
            else "offline: extractive answers, /generate is 503",
            required=False,
        )
        checks["inference"] = self._saturation_check()
        return checks

    def _saturation_check(self) -> ReadinessCheck:
        """Model queues near capacity (or refusing lately): reported, never a reason to
        take the process out of rotation, since a full queue already answers 503 at once."""
        queues = self.inference.saturation()
        detail = ", ".join(
            f"{q.model} {q.depth}/{q.capacity}{' saturated' if q.saturated else ''}" for q in queues
        )
        ok = not any(q.saturated for q in queues)
        return ReadinessCheck(ok, detail or "idle", required=False)

    def _not_connected(self) -> str:
        if self._store_error is None:
            return "the vector store is not started"
        return f"the vector store is not connected yet: {self._store_error}"

    def close(self) -> None:
        self.inference.close()
        with self._lock:
            self._closed.set()
        if self._store is not None:
            self._store.close()
        if self._history_pool is not None:
            self._history_pool.close()
