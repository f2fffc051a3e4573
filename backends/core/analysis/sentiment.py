"""Lexicon sentiment with VADER (offline, deterministic)."""

from __future__ import annotations

import threading
from importlib.metadata import version
from typing import TYPE_CHECKING

from backends.core.analysis.results import SentimentLabel, SentimentResult
from backends.core.analysis.text import split_sentences

if TYPE_CHECKING:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

# VADER's own recommended cut-offs for the compound score.
_POLARITY_THRESHOLD = 0.05
# "Mixed": both sides carry real weight, the weaker at least half the stronger.
_MIXED_MIN_SHARE = 0.1
_MIXED_MIN_RATIO = 0.5
_MAX_CONFIDENCE = 0.95  # a lexicon never deserves certainty
_UNIT_WORDS = 60


class VaderSentiment:
    """Thread-safe after the lexicon loads (on first use, once)."""

    provider = "local"

    def __init__(self) -> None:
        self.model = f"vader-{version('vaderSentiment')}"
        self._analyzer: SentimentIntensityAnalyzer | None = None
        self._lock = threading.Lock()

    def _get(self) -> SentimentIntensityAnalyzer:
        with self._lock:
            if self._analyzer is None:
                from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

                self._analyzer = SentimentIntensityAnalyzer()
            return self._analyzer

    def analyze(self, text: str) -> SentimentResult:
        analyzer = self._get()
        # VADER is quadratic in the length of what it scores (a 50k-char text takes seconds):
        # score short units and combine them instead.
        units = _units(text)
        scored = [(analyzer.polarity_scores(u), len(u.split())) for u in units]
        total = sum(weight for _, weight in scored) or 1
        pos, neg, neu = (
            round(sum(scores[key] * weight for scores, weight in scored) / total, 4)
            for key in ("pos", "neg", "neu")
        )
        # One unit: VADER's own compound. Several: the mean over the opinionated units, since
        # a compound over the whole text saturates and neutral sentences would dilute a mean.
        compounds = [scores["compound"] for scores, _ in scored if scores["compound"] != 0.0]
        compound = sum(compounds) / len(compounds) if compounds else 0.0
        label, confidence = _label(pos, neg, neu, compound)
        return SentimentResult(
            sentiment=label,
            score=round(compound, 4),
            confidence=round(min(confidence, _MAX_CONFIDENCE), 4),
            scores={"positive": pos, "negative": neg, "neutral": neu},
            model=self.model,
            provider=self.provider,
        )


def _units(text: str) -> list[str]:
    """Sentences, with run-on ones cut into windows of at most ``_UNIT_WORDS`` words."""
    units: list[str] = []
    for sentence in split_sentences(text) or [text]:
        tokens = sentence.split()
        units.extend(
            " ".join(tokens[i : i + _UNIT_WORDS]) for i in range(0, len(tokens), _UNIT_WORDS)
        )
    return units or [text]


def _label(pos: float, neg: float, neu: float, compound: float) -> tuple[SentimentLabel, float]:
    weaker, stronger = min(pos, neg), max(pos, neg)
    if weaker >= _MIXED_MIN_SHARE and weaker / stronger >= _MIXED_MIN_RATIO:
        return "mixed", 0.5 + 0.5 * weaker / stronger
    if compound >= _POLARITY_THRESHOLD:
        return "positive", 0.5 + 0.5 * compound
    if compound <= -_POLARITY_THRESHOLD:
        return "negative", 0.5 + 0.5 * -compound
    return "neutral", 0.5 + 0.5 * neu
