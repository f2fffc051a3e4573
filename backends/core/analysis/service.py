"""Analysis use cases: sentiment, keywords, summary, classify, analyze, generate."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from backends.core.analysis.classify import ZeroShotClassifier
from backends.core.analysis.keywords import YakeKeywords
from backends.core.analysis.results import (
    AnalysisResult,
    ClassificationResult,
    KeywordsResult,
    SentimentResult,
    SummaryResult,
)
from backends.core.analysis.sentiment import VaderSentiment
from backends.core.analysis.summary import ExtractiveSummarizer
from backends.core.analysis.text import word_count
from backends.core.embeddings.base import EmbeddingProvider
from backends.core.embeddings.registry import EmbeddingRegistry
from backends.core.errors import InvalidInput, ProviderUnavailable, UnknownModel
from backends.core.llm.base import Completion, GenerationStream, LLMProvider
from backends.core.llm.context import answer_room, capped_max_tokens
from backends.core.llm.factory import NO_LLM_MESSAGE

AnalysisKind = Literal["sentiment", "summary", "keywords"]
ALL_ANALYSES: tuple[AnalysisKind, ...] = ("sentiment", "summary", "keywords")
SUMMARY_PREFIX = "extractive-centrality+"
CLASSIFY_PREFIX = "zero-shot-"

_CONTEXT_SYSTEM_PROMPT = (
    "Use the context below when it helps to answer. If it does not contain the answer, "
    "say so rather than inventing one.\n\nContext:\n{context}"
)


def _require_text(text: str, field: str = "text") -> None:
    if not text.strip():
        raise InvalidInput(
            f"{field} must contain at least one non-space character",
            details=[{"loc": ["body", field], "message": "blank text", "type": "value_error"}],
        )


def _unknown_model(model: str, accepted: Sequence[str]) -> UnknownModel:
    return UnknownModel(model, list(accepted))


class AnalysisService:
    """Offline analysers plus an optional LLM for generation; synchronous and thread-safe."""

    def __init__(self, embeddings: EmbeddingRegistry, llm: LLMProvider | None = None) -> None:
        self._embeddings = embeddings
        self._llm = llm
        self._sentiment = VaderSentiment()
        self._keywords = YakeKeywords()

    def _fixed_model(self, model: str | None, own: str, alias: str) -> None:
        if model is not None and model.strip() not in (own, alias):
            raise _unknown_model(model, [own])

    def _embedding_for(self, model: str | None, prefix: str) -> EmbeddingProvider:
        """The embedding model behind summary/classify: None, "<prefix><id>" or a bare id."""
        if model is not None:
            model = model.strip()
            model = model.removeprefix(prefix)
        try:
            return self._embeddings.resolve(model)
        except UnknownModel:
            assert model is not None  # resolve(None) never raises UnknownModel
            accepted = [f"{prefix}{m}" for m in self._embeddings.known_ids()]
            raise _unknown_model(model, accepted) from None

    def sentiment(self, text: str, model: str | None = None) -> SentimentResult:
        _require_text(text)
        self._fixed_model(model, self._sentiment.model, "vader")
        return self._sentiment.analyze(text)

    def keywords(
        self, text: str, max_keywords: int = 10, model: str | None = None
    ) -> KeywordsResult:
        _require_text(text)
        self._fixed_model(model, self._keywords.model, "yake")
        return self._keywords.extract(text, max_keywords)

    def summarize(
        self, text: str, max_length: int = 100, model: str | None = None
    ) -> SummaryResult:
        _require_text(text)
        provider = self._embedding_for(model, SUMMARY_PREFIX)
        return ExtractiveSummarizer(provider).summarize(text, max_length)

    def classify(
        self,
        text: str,
        categories: Sequence[str],
        multi_label: bool = False,
        model: str | None = None,
    ) -> ClassificationResult:
        _require_text(text)
        provider = self._embedding_for(model, CLASSIFY_PREFIX)
        return ZeroShotClassifier(provider).classify(text, categories, multi_label)

    def analyze(
        self,
        text: str,
        analyses: Sequence[AnalysisKind] = ALL_ANALYSES,
        model: str | None = None,
    ) -> AnalysisResult:
        """The chosen analyses in one result; ``model`` picks the summary's embedding model."""
        _require_text(text)
        wanted = set(analyses)
        if not wanted or not wanted <= set(ALL_ANALYSES):
            raise InvalidInput("analyses must name one or more of: " + ", ".join(ALL_ANALYSES))
        sentiment = self.sentiment(text) if "sentiment" in wanted else None
        summary = self.summarize(text, model=model) if "summary" in wanted else None
        keywords = self.keywords(text) if "keywords" in wanted else None
        parts = [p for p in (sentiment, summary, keywords) if p is not None]
        providers = list(dict.fromkeys(p.provider for p in parts))
        return AnalysisResult(
            word_count=word_count(text),
            char_count=len(text),
            sentiment=sentiment,
            summary=summary,
            keywords=keywords,
            model=",".join(p.model for p in parts),
            provider=",".join(providers),
        )

    @property
    def can_generate(self) -> bool:
        return self._llm is not None

    def generate(
        self,
        prompt: str,
        context: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Completion:
        """LLM text; ProviderUnavailable (503) when no LLM is configured."""
        llm, system, max_tokens = self._generation(prompt, context, max_tokens)
        return llm.complete(
            prompt,
            system=system,
            model=model.strip() if model else None,
            max_tokens=max_tokens,
            temperature=temperature,
        )

    def generate_stream(
        self,
        prompt: str,
        context: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> GenerationStream:
        """``generate``'s text piece by piece; the same errors, raised before the first piece."""
        llm, system, max_tokens = self._generation(prompt, context, max_tokens)
        return llm.stream(
            prompt,
            system=system,
            model=model.strip() if model else None,
            max_tokens=max_tokens,
            temperature=temperature,
        )

    def _generation(
        self, prompt: str, context: str | None, max_tokens: int | None
    ) -> tuple[LLMProvider, str | None, int | None]:
        """The LLM, the system message and ``max_tokens`` lowered to what the context leaves.

        The prompt and context are the caller's own instruction, never shortened: when a
        small (local) model's context cannot hold them and an answer, InvalidInput (422,
        detail type context_length; the contract documents it).
        """
        _require_text(prompt, "prompt")
        if self._llm is None:
            raise ProviderUnavailable(NO_LLM_MESSAGE)
        system = _CONTEXT_SYSTEM_PROMPT.format(context=context) if context else None
        window = self._llm.context_window
        if window is not None:
            room = answer_room(window, system, prompt, "prompt")
            max_tokens = capped_max_tokens(max_tokens, room)
        return self._llm, system, max_tokens
