"""Text analysis: sentiment, summary, keywords, all three at once, and classification."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import ConfigDict, Field
from pydantic.config import JsonDict

from shared_schemas.analysis_results import (
    KEYWORDS_EXAMPLE,
    SENTIMENT_EXAMPLE,
    SUMMARY_EXAMPLE,
    KeywordsResult,
    SentimentResult,
    SummaryResult,
)
from shared_schemas.common import (
    MODEL_FIELD_DESCRIPTION,
    PROVIDER_DESCRIPTION,
    RESULT_MODEL_DESCRIPTION,
    ModelName,
    ProviderName,
    RequestModel,
    ResponseModel,
    Text,
    non_blank,
)

AnalysisKind = Literal["sentiment", "summary", "keywords"]
CategoryName = Annotated[str, non_blank(100)]

MAX_CATEGORIES = 50
TEXT_DESCRIPTION = "Text to analyse (1..50 000 chars, not blank)."
_LOCAL: JsonDict = {"model": "vader-lexicon", "provider": "local"}
_REVIEW = "The new release is fast and the search results are spot on. Setup was a bit fiddly."


class _TextRequest(RequestModel):
    text: Text = Field(description=TEXT_DESCRIPTION)
    model: ModelName | None = Field(default=None, description=MODEL_FIELD_DESCRIPTION)


class SentimentRequest(_TextRequest):
    """Sentiment of one text."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"text": _REVIEW}]})


class SentimentResponse(SentimentResult):
    """Sentiment with the model that judged it."""

    model_config = ConfigDict(json_schema_extra={"examples": [SENTIMENT_EXAMPLE | _LOCAL]})

    model: str = Field(description=RESULT_MODEL_DESCRIPTION)
    provider: ProviderName = Field(description=PROVIDER_DESCRIPTION)


class SummarizeRequest(_TextRequest):
    """Summarise a text in at most max_length words."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"text": _REVIEW, "max_length": 30}]})

    max_length: int = Field(default=100, ge=10, le=1000, description="Longest summary, in words.")


class SummarizeResponse(SummaryResult):
    """Summary with the model that wrote it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [SUMMARY_EXAMPLE | {"model": "extractive", "provider": "local"}]
        }
    )

    model: str = Field(description=RESULT_MODEL_DESCRIPTION)
    provider: ProviderName = Field(description=PROVIDER_DESCRIPTION)


class KeywordsRequest(_TextRequest):
    """Extract up to max_keywords ranked keywords."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"text": _REVIEW, "max_keywords": 5}]}
    )

    max_keywords: int = Field(default=10, ge=1, le=50, description="Most keywords to return.")


class KeywordsResponse(KeywordsResult):
    """Keywords with the model that found them."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [KEYWORDS_EXAMPLE | {"model": "yake", "provider": "local"}]}
    )

    model: str = Field(description=RESULT_MODEL_DESCRIPTION)
    provider: ProviderName = Field(description=PROVIDER_DESCRIPTION)


class AnalyzeRequest(_TextRequest):
    """Run several analyses on one text in one call."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"text": _REVIEW}, {"text": _REVIEW, "analyses": ["sentiment"]}]
        }
    )

    analyses: list[AnalysisKind] = Field(
        default_factory=lambda: list(get_args(AnalysisKind)),
        min_length=1,
        max_length=3,
        description="Analyses to run (repeats are ignored); default all three.",
    )


class AnalyzeResponse(ResponseModel):
    """Counts plus the requested analyses (null for those not requested)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "word_count": 16,
                    "char_count": 83,
                    "sentiment": SENTIMENT_EXAMPLE,
                    "summary": SUMMARY_EXAMPLE,
                    "keywords": KEYWORDS_EXAMPLE,
                    "model": "local-analysis",
                    "provider": "local",
                }
            ]
        }
    )

    word_count: int = Field(ge=0, description="Whitespace-separated words in the text.")
    char_count: int = Field(ge=0, description="Characters (Unicode code points) in the text.")
    sentiment: SentimentResult | None = Field(description="Sentiment, if requested.")
    summary: SummaryResult | None = Field(description="Summary, if requested.")
    keywords: KeywordsResult | None = Field(description="Keywords, if requested.")
    model: str = Field(description=RESULT_MODEL_DESCRIPTION)
    provider: ProviderName = Field(description=PROVIDER_DESCRIPTION)


class ClassifyRequest(_TextRequest):
    """Classify a text into caller-given categories."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"text": "My card was charged twice.", "categories": ["billing", "shipping", "bug"]}
            ]
        }
    )

    categories: list[CategoryName] = Field(
        min_length=1,
        max_length=MAX_CATEGORIES,
        description="Candidate categories (1..50, each 1..100 chars); duplicates (trimmed, "
        "case-insensitive) are dropped, keeping the first spelling.",
    )
    multi_label: bool = Field(
        default=False, description="Score each category on its own instead of one distribution."
    )


class Classification(ResponseModel):
    """Score of one category."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"category": "billing", "confidence": 0.83}]}
    )

    category: str = Field(description="The category.")
    confidence: float = Field(ge=0.0, le=1.0, description="Score of the category.")


class ClassifyResponse(ResponseModel):
    """Categories by descending confidence."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "label": "billing",
                    "classifications": [
                        {"category": "billing", "confidence": 0.83},
                        {"category": "bug", "confidence": 0.11},
                        {"category": "shipping", "confidence": 0.06},
                    ],
                    "multi_label": False,
                    "text_preview": "My card was charged twice.",
                    "model": "all-MiniLM-L6-v2",
                    "provider": "local",
                }
            ]
        }
    )

    label: str = Field(description="Best category.")
    classifications: list[Classification] = Field(
        min_length=1,
        max_length=MAX_CATEGORIES,
        description="Every category, best first; confidences sum to 1 unless multi_label.",
    )
    multi_label: bool = Field(description="Echo of the request flag.")
    text_preview: str = Field(
        max_length=103, description='First 100 characters, plus "..." when the text is longer.'
    )
    model: str = Field(description=RESULT_MODEL_DESCRIPTION)
    provider: ProviderName = Field(description=PROVIDER_DESCRIPTION)
