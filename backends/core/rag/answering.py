"""Turning retrieved sources into an answer: an LLM prompt, or an extractive answer."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from backends.core.llm.base import ContextWindow
from backends.core.llm.context import MIN_ANSWER_TOKENS, answer_room, capped_max_tokens
from backends.core.vectorstore.base import ScoredPoint

DEFAULT_SYSTEM_PROMPT = (
    "You answer questions using only the numbered context passages provided. If the "
    "context does not contain the answer, say so plainly instead of guessing. Cite the "
    "passages you use as [1], [2], ... after the statements they support."
)
# Longest part of one source in an LLM prompt (the provider bounds the total).
MAX_SOURCE_CHARS = 4000
# Share of a small model's context an answer keeps from the sources (1/4: 512 of 2,048).
ANSWER_SHARE = 4
_SEPARATOR = "\n\n---\n\n"
# Extractive answer bounds: sentences considered (one embedding call) and kept.
MAX_CANDIDATE_SENTENCES = 96
MAX_SENTENCE_CHARS = 500
ANSWER_SENTENCES = 3
# Sentences scoring below this share of the best one are left out of the answer.
RELATIVE_CUTOFF = 0.6

# An LLM answer that cites none of its sources gets a marker for each source it is this
# similar to (cosine of MiniLM vectors). Measured on SmolLM2-135M answers: 0.34-0.97 to
# the source an answer came from, -0.07-0.09 to the others and for "I don't know".
CITATION_MIN_SIMILARITY = 0.3

_CITATION = re.compile(r"\[(\d+)\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*")
_WORD = re.compile(r"\w")

Embed = Callable[[Sequence[str]], npt.NDArray[np.float32]]


def no_sources_answer(collection: str) -> str:
    return (
        f"No relevant information was found in collection '{collection}' for this question: "
        "no indexed passage matched it closely enough."
    )


def build_prompt(question: str, sources: Sequence[ScoredPoint], max_context_chars: int) -> str:
    """Numbered context blocks separated by ``---`` (as the reference), then the question.

    Each source gets at most an equal share of ``max_context_chars``, so a small local
    model's context still shows every source it is asked to cite.
    """
    return _prompt(question, source_blocks(sources, max_context_chars))


def source_blocks(sources: Sequence[ScoredPoint], max_context_chars: int) -> list[str]:
    """Each source as a numbered block, within its equal share of ``max_context_chars``."""
    blocks: list[str] = []
    budget = max_context_chars
    share = min(MAX_SOURCE_CHARS, max_context_chars // max(1, len(sources)))
    for number, source in enumerate(sources, start=1):
        text = source.text[: min(share, budget)]
        if not text:
            break
        blocks.append(_block(number, source.document_id, text))
        budget -= len(text)
    return blocks


def _block(number: int, document_id: str, text: str) -> str:
    return f"[{number}] (document: {document_id})\n{text}"


def _prompt(question: str, blocks: Sequence[str]) -> str:
    context = _SEPARATOR.join(blocks)
    return f"Context:\n\n{context}\n\nQuestion: {question}\n\nAnswer:"


@dataclass(frozen=True, slots=True)
class FittedPrompt:
    prompt: str
    max_tokens: int | None  # the request's, lowered to what the context leaves
    sources_shown: int  # the sources the prompt carries, best first (the rest dropped)


def fit_prompt(
    question: str,
    sources: Sequence[ScoredPoint],
    system: str,
    window: ContextWindow,
    max_tokens: int | None,
    max_context_chars: int,
) -> FittedPrompt:
    """``build_prompt`` fitted to a model's context in tokens, so every request is served.

    The system prompt and the question are kept whole (InvalidInput, a documented 422, only
    when they alone leave no room for an answer). The answer keeps up to a quarter of the
    context (less when it asks for less); the sources fill the rest best first: the lowest
    ranked are dropped and the last one shown is cut. ``max_tokens`` is then lowered to
    what the context leaves.
    """
    room = answer_room(window, system, _prompt(question, []), "query")
    reserve = min(max_tokens or room, window.context_tokens // ANSWER_SHARE)
    # sources get what the answer's reserve leaves, and never less than half the room
    budget = max(room - reserve, (room - MIN_ANSWER_TOKENS) // 2)
    most = window.context_tokens - room + budget  # the whole chat's tokens, at most
    blocks: list[str] = []
    for block in source_blocks(sources, max_context_chars):
        cost = window.text_tokens(_SEPARATOR + block)
        if cost > budget:
            cut = _cut_to(block, budget, window)
            if cut:
                blocks.append(cut)
            break
        blocks.append(block)
        budget -= cost
    prompt = _prompt(question, blocks)
    # Token counts of parts need not add up exactly: check the whole, shorten if needed.
    while blocks and window.chat_tokens(system, prompt) > most:
        last = _cut_to(blocks[-1], window.text_tokens(blocks[-1]) * 3 // 4, window)
        blocks[-1:] = [last] if last else []
        prompt = _prompt(question, blocks)
    left = answer_room(window, system, prompt, "query")
    return FittedPrompt(prompt, capped_max_tokens(max_tokens, left), len(blocks))


def _cut_to(block: str, tokens: int, window: ContextWindow) -> str:
    """The longest head of ``block`` within ``tokens`` (with its separator); "" if only the
    block's heading would fit."""
    heading = block.index("\n") + 1
    if window.text_tokens(_SEPARATOR + block[:heading]) >= tokens:
        return ""
    low, high = heading, len(block)  # low fits, high may not
    while low < high:
        middle = (low + high + 1) // 2
        if window.text_tokens(_SEPARATOR + block[:middle]) <= tokens:
            low = middle
        else:
            high = middle - 1
    return block[:low] if low > heading else ""


def split_sentences(text: str) -> list[str]:
    """Sentences (or lines) of ``text`` that contain at least one word character."""
    parts = (part.strip() for part in _SENTENCE_END.split(text))
    return [p[:MAX_SENTENCE_CHARS] for p in parts if _WORD.search(p)]


def extractive_answer(
    question_vector: npt.NDArray[np.float32],
    sources: Sequence[ScoredPoint],
    embed: Embed,
    max_sentences: int = ANSWER_SENTENCES,
) -> str:
    """The sources' sentences closest to the question, in source order, each cited as [n]."""
    candidates: list[tuple[int, int, str]] = []  # (source number, position, sentence)
    for number, source in enumerate(sources, start=1):
        for position, sentence in enumerate(split_sentences(source.text)):
            candidates.append((number, position, sentence))
    candidates = candidates[:MAX_CANDIDATE_SENTENCES]
    if not candidates:
        return ""
    vectors = embed([sentence for _, _, sentence in candidates])
    similarity = vectors @ question_vector.astype(np.float32)
    # A sentence counts as much as its source does relative to the best source, so a
    # loosely related source contributes only a strongly matching sentence.
    best_source = max(s.score for s in sources)
    weight = [max(s.score, 0.0) / best_source if best_source > 0 else 1.0 for s in sources]
    scores = [float(similarity[i]) * weight[c[0] - 1] for i, c in enumerate(candidates)]
    # Best first; among equal scores the higher-ranked source wins.
    ranked = sorted(range(len(candidates)), key=lambda i: (-scores[i], candidates[i][:2]))
    cutoff = RELATIVE_CUTOFF * scores[ranked[0]]
    chosen: list[tuple[int, int, str]] = []
    seen: set[str] = set()
    for i in ranked:
        sentence = candidates[i][2]
        if chosen and scores[i] < cutoff:
            break
        if sentence.casefold() in seen:
            continue
        seen.add(sentence.casefold())
        chosen.append(candidates[i])
        if len(chosen) == max_sentences:
            break
    chosen.sort(key=lambda c: (c[0], c[1]))
    return " ".join(f"{sentence} [{number}]" for number, _, sentence in chosen)


def cite_sources(answer: str, sources: Sequence[ScoredPoint], embed: Embed) -> str:
    """The LLM's answer, with ``[n]`` markers added when it cites none of the sources itself.

    Small local models rarely follow the citation instruction; the markers then name the
    sources the whole answer is close to, so a reader can still check it against them.
    """
    cited = {int(n) for n in _CITATION.findall(answer)}
    if not answer.strip() or not sources or cited & set(range(1, len(sources) + 1)):
        return answer
    vectors = embed([answer, *(source.text for source in sources)])
    similarity = vectors[1:] @ vectors[0]
    markers = "".join(
        f"[{number}]"
        for number, score in enumerate(similarity.tolist(), start=1)
        if score >= CITATION_MIN_SIMILARITY
    )
    return f"{answer} {markers}" if markers else answer
