"""Extractive summaries: sentences ranked by centrality (TextRank over our own embeddings)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from backends.core.analysis.results import SummaryResult
from backends.core.analysis.text import split_sentences, truncate_words, word_count
from backends.core.embeddings.base import EmbeddingProvider, Vectors

_DAMPING = 0.85
_ITERATIONS = 100
_TOLERANCE = 1e-6
# Two sentences this similar say the same thing: keep only the better ranked one.
_REDUNDANT = 0.92
MAX_KEY_POINTS = 5


def textrank(vectors: Vectors) -> npt.NDArray[np.float64]:
    """PageRank over the cosine-similarity graph of unit vectors (negative edges dropped)."""
    n = vectors.shape[0]
    sim = np.clip(vectors.astype(np.float64) @ vectors.T.astype(np.float64), 0.0, None)
    np.fill_diagonal(sim, 0.0)
    out_weight = sim.sum(axis=1, keepdims=True)
    # A sentence similar to nothing spreads its vote evenly instead of dividing by zero.
    transition = np.where(out_weight > 0, sim / np.where(out_weight > 0, out_weight, 1), 1.0 / n)
    rank: npt.NDArray[np.float64] = np.full(n, 1.0 / n)
    for _ in range(_ITERATIONS):
        updated = (1 - _DAMPING) / n + _DAMPING * (transition.T @ rank)
        converged = bool(np.abs(updated - rank).sum() < _TOLERANCE)
        rank = updated
        if converged:
            break
    return rank


class ExtractiveSummarizer:
    """Picks the most central sentences that fit ``max_length`` words, in document order."""

    def __init__(self, embeddings: EmbeddingProvider) -> None:
        self._embeddings = embeddings
        self.model = f"extractive-centrality+{embeddings.model}"
        self.provider = embeddings.provider

    def summarize(self, text: str, max_length: int = 100) -> SummaryResult:
        sentences = split_sentences(text)
        if len(sentences) <= 1:
            summary = truncate_words(" ".join(sentences), max_length)
            return self._result(summary, [summary] if summary else [])

        vectors = self._embeddings.embed(sentences).vectors
        rank = textrank(vectors)
        # Highest rank first; earlier sentence wins a tie (leads tend to carry the topic).
        order = sorted(range(len(sentences)), key=lambda i: (-rank[i], i))

        chosen: list[int] = []
        used = 0
        for i in order:
            length = word_count(sentences[i])
            if used + length > max_length or self._redundant(vectors, chosen, i):
                continue
            chosen.append(i)
            used += length
        if not chosen:
            # Even the best sentence is longer than the budget: cut it rather than say nothing.
            summary = truncate_words(sentences[order[0]], max_length)
        else:
            summary = " ".join(sentences[i] for i in sorted(chosen))

        key_points: list[int] = []
        for i in order:
            if len(key_points) == MAX_KEY_POINTS:
                break
            if not self._redundant(vectors, key_points, i):
                key_points.append(i)
        return self._result(summary, [sentences[i] for i in key_points])

    @staticmethod
    def _redundant(vectors: Vectors, chosen: list[int], candidate: int) -> bool:
        if not chosen:
            return False
        return bool((vectors[chosen] @ vectors[candidate]).max() >= _REDUNDANT)

    def _result(self, summary: str, key_points: list[str]) -> SummaryResult:
        return SummaryResult(
            summary=summary,
            key_points=key_points,
            word_count=word_count(summary),
            model=self.model,
            provider=self.provider,
        )
