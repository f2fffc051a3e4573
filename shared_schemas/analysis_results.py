"""Result bodies shared by the single analyses and /analysis/analyze."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field
from pydantic.config import JsonDict

from shared_schemas.common import ResponseModel

MAX_KEYWORDS = 50

Sentiment = Literal["positive", "negative", "neutral", "mixed"]

SENTIMENT_EXAMPLE: JsonDict = {
    "sentiment": "positive",
    "score": 0.72,
    "confidence": 0.86,
    "scores": {"positive": 0.61, "negative": 0.04, "neutral": 0.35},
}
SUMMARY_EXAMPLE: JsonDict = {
    "summary": "The update speeds up search and fixes two indexing bugs.",
    "key_points": ["Search is faster", "Two indexing bugs fixed"],
    "word_count": 10,
}
KEYWORDS_EXAMPLE: JsonDict = {
    "keywords": [
        {"keyword": "vector search", "score": 0.92},
        {"keyword": "indexing", "score": 0.64},
    ]
}


class SentimentScores(ResponseModel):
    """Share of each polarity (each 0..1)."""

    model_config = ConfigDict(json_schema_extra={"examples": [SENTIMENT_EXAMPLE["scores"]]})

    positive: float = Field(ge=0.0, le=1.0, description="Positive share.")
    negative: float = Field(ge=0.0, le=1.0, description="Negative share.")
    neutral: float = Field(ge=0.0, le=1.0, description="Neutral share.")


class SentimentResult(ResponseModel):
    """Overall sentiment of a text."""

    model_config = ConfigDict(json_schema_extra={"examples": [SENTIMENT_EXAMPLE]})

    sentiment: Sentiment = Field(description="Label.")
    score: float = Field(ge=-1.0, le=1.0, description="Polarity: -1 negative .. 1 positive.")
    confidence: float = Field(ge=0.0, le=1.0, description="Confidence in the label.")
    scores: SentimentScores = Field(description="Per-polarity shares.")


class SummaryResult(ResponseModel):
    """A summary with its key points."""

    model_config = ConfigDict(json_schema_extra={"examples": [SUMMARY_EXAMPLE]})

    summary: str = Field(description="The summary.")
    key_points: list[str] = Field(max_length=10, description="Main points (at most 10).")
    word_count: int = Field(ge=0, description="Words in the summary.")


class Keyword(ResponseModel):
    """One keyword or key phrase."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"keyword": "indexing", "score": 0.64}]}
    )

    keyword: str = Field(description="The keyword or phrase.")
    score: float = Field(ge=0.0, le=1.0, description="Relevance; higher is more relevant.")


class KeywordsResult(ResponseModel):
    """Keywords ranked by relevance, best first."""

    model_config = ConfigDict(json_schema_extra={"examples": [KEYWORDS_EXAMPLE]})

    keywords: list[Keyword] = Field(max_length=MAX_KEYWORDS, description="Ranked keywords.")
