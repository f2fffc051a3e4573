"""Offline text analysis (sentiment, keywords, summary, zero-shot classes) and LLM generation."""

from backends.core.analysis.results import (
    AnalysisResult,
    Classification,
    ClassificationResult,
    Keyword,
    KeywordsResult,
    SentimentResult,
    SummaryResult,
)
from backends.core.analysis.service import ALL_ANALYSES, AnalysisKind, AnalysisService

__all__ = [
    "ALL_ANALYSES",
    "AnalysisKind",
    "AnalysisResult",
    "AnalysisService",
    "Classification",
    "ClassificationResult",
    "Keyword",
    "KeywordsResult",
    "SentimentResult",
    "SummaryResult",
]
