"""Turning retrieved sources into an answer: an LLM prompt, or an extractive answer."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from backends.core.vectorstore.base import ScoredPoint

DEFAULT_SYSTEM_PROMPT = (
    "You answer questions using only the numbered context passages provided. If the "
    "context does not contain the answer, say so plainly instead of guessing. Cite the "
    "passages you use as [1], [2], ... after the statements they support."
)
# LLM context bounds: whole documents may be 100k characters and top_k 20.
MAX_SOURCE_CHARS = 4000
MAX_CONTEXT_CHARS = 24000
# Extractive answer bounds: sentences considered (one embedding call) and kept.
MAX_CANDIDATE_SENTENCES = 96
MAX_SENTENCE_CHARS = 500
ANSWER_SENTENCES = 3
# Sentences scoring below this share of the best one are left out of the answer.
RELATIVE_CUTOFF = 0.6

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*")
_WORD = re.compile(r"\w")

Embed = Callable[[Sequence[str]], npt.NDArray[np.float32]]


def no_sources_answer(collection: str) -> str:
    return (
        f"No relevant information was found in collection '{collection}' for this question: "
        "no indexed passage matched it closely enough."
    )


def build_prompt(question: str, sources: Sequence[ScoredPoint]) -> str:
    """Numbered context blocks separated by ``---`` (as the reference), then the question."""
    blocks: list[str] = []
    budget = MAX_CONTEXT_CHARS
    for number, source in enumerate(sources, start=1):
        text = source.text[: min(MAX_SOURCE_CHARS, budget)]
        if not text:
            break
        blocks.append(f"[{number}] (document: {source.document_id})\n{text}")
        budget -= len(text)
    context = "\n\n---\n\n".join(blocks)
    return f"Context:\n\n{context}\n\nQuestion: {question}\n\nAnswer:"


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
