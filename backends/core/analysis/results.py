"""Result values of the analysis engine (plain dataclasses; the backends map them to JSON)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SentimentLabel = Literal["positive", "negative", "neutral", "mixed"]


@dataclass(frozen=True, slots=True)
class SentimentResult:
    sentiment: SentimentLabel
    score: float  # -1..1
    confidence: float  # 0..1
    scores: dict[str, float]  # positive, negative, neutral shares (sum 1)
    model: str
    provider: str


@dataclass(frozen=True, slots=True)
class Keyword:
    keyword: str
    score: float  # 0..1, higher = more relevant


@dataclass(frozen=True, slots=True)
class KeywordsResult:
    keywords: list[Keyword]
    model: str
    provider: str


@dataclass(frozen=True, slots=True)
class SummaryResult:
    summary: str
    key_points: list[str]
    word_count: int  # of the summary
    model: str
    provider: str


@dataclass(frozen=True, slots=True)
class Classification:
    category: str
    confidence: float


@dataclass(frozen=True, slots=True)
class ClassificationResult:
    label: str
    classifications: list[Classification]  # sorted by confidence, highest first
    multi_label: bool
    text_preview: str
    model: str
    provider: str


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    word_count: int
    char_count: int
    sentiment: SentimentResult | None
    summary: SummaryResult | None
    keywords: KeywordsResult | None
    model: str
    provider: str
