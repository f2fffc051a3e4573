"""Zero-shot classification by embedding similarity between the text and each label."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from backends.core.analysis.results import Classification, ClassificationResult
from backends.core.analysis.text import preview, words
from backends.core.embeddings.base import EmbeddingProvider, Vectors, l2_normalise
from backends.core.errors import InvalidInput

TEMPLATE = "This text is about {label}."
# Cosine similarities of sentence embeddings sit in a narrow band (about 0..0.7), so a low
# softmax temperature is needed for the winner to stand out.
_TEMPERATURE = 0.05
# Multi-label: a logistic curve centred where a label starts to be plausibly "about" the text.
_SIGMOID_CENTRE = 0.15
_SIGMOID_SCALE = 0.04
# The model reads 256 tokens; longer texts are embedded in windows and averaged.
_WINDOW_WORDS = 160
_MAX_WINDOWS = 16


def unique_categories(categories: Sequence[str]) -> list[str]:
    """Stripped, non-blank, first spelling kept for case-insensitive duplicates, order kept."""
    seen: set[str] = set()
    out: list[str] = []
    for category in categories:
        label = category.strip()
        key = label.casefold()
        if label and key not in seen:
            seen.add(key)
            out.append(label)
    return out


def _windows(text: str) -> list[str]:
    tokens = words(text)
    if len(tokens) <= _WINDOW_WORDS:
        return [text]
    spans = range(0, len(tokens), _WINDOW_WORDS)
    return [" ".join(tokens[s : s + _WINDOW_WORDS]) for s in spans][:_MAX_WINDOWS]


def softmax(values: npt.NDArray[np.float64], temperature: float) -> npt.NDArray[np.float64]:
    scaled = values / temperature
    exp = np.exp(scaled - scaled.max())
    return np.asarray(exp / exp.sum(), dtype=np.float64)


class ZeroShotClassifier:
    """Scores each label by the text's cosine to "This text is about {label}." and to the label."""

    def __init__(self, embeddings: EmbeddingProvider) -> None:
        self._embeddings = embeddings
        self.model = f"zero-shot-{embeddings.model}"
        self.provider = embeddings.provider

    def similarities(self, text: str, labels: Sequence[str]) -> npt.NDArray[np.float64]:
        """Mean of the two cosines per label (texts and labels embedded in one call)."""
        windows = _windows(text)
        prompts = [TEMPLATE.format(label=label) for label in labels]
        vectors = self._embeddings.embed([*windows, *prompts, *labels]).vectors
        text_vec: Vectors = l2_normalise(vectors[: len(windows)].mean(axis=0, keepdims=True))
        n = len(labels)
        templated = vectors[len(windows) : len(windows) + n] @ text_vec[0]
        bare = vectors[len(windows) + n :] @ text_vec[0]
        return np.asarray((templated + bare) / 2, dtype=np.float64)

    def classify(
        self, text: str, categories: Sequence[str], multi_label: bool = False
    ) -> ClassificationResult:
        labels = unique_categories(categories)
        if not labels:
            raise InvalidInput(
                "categories must contain at least one non-blank category",
                details=[
                    {"loc": ["body", "categories"], "message": "empty", "type": "value_error"}
                ],
            )
        sims = self.similarities(text, labels)
        if multi_label:
            scores = 1.0 / (1.0 + np.exp(-(sims - _SIGMOID_CENTRE) / _SIGMOID_SCALE))
        else:
            scores = softmax(sims, _TEMPERATURE)
        ranked = sorted(zip(labels, scores.tolist(), strict=True), key=lambda p: -p[1])
        return ClassificationResult(
            label=ranked[0][0],
            classifications=[Classification(c, round(float(s), 6)) for c, s in ranked],
            multi_label=multi_label,
            text_preview=preview(text),
            model=self.model,
            provider=self.provider,
        )
