"""Offline analysis on real models: VADER, YAKE, extractive summary, zero-shot classes."""

from __future__ import annotations

import pytest

from backends.core.analysis.service import AnalysisService
from backends.core.analysis.text import split_sentences, word_count
from backends.core.errors import InvalidInput, ProviderUnavailable, UnknownModel
from backends.core.llm.factory import build_llm_provider
from tests.core.engine_fixtures import SECRET_KEY, analysis_service, engine_settings, registry

__all__ = ["analysis_service", "registry"]

POSITIVE = [
    "I absolutely love this product, it works perfectly!",
    "The staff were friendly and the food was delicious.",
    "What a fantastic movie, I enjoyed every minute of it.",
    "Great service, fast delivery, highly recommended.",
    "This is the best vacation we have ever had.",
    "The new update is excellent and makes everything easier.",
    "I'm so happy with my purchase, thank you!",
    "Beautiful views and a wonderful, relaxing atmosphere.",
    "The teacher was patient, kind and very helpful.",
    "Our team did an amazing job and won the award.",
]
NEGATIVE = [
    "This is the worst product I have ever bought.",
    "The service was terrible and the staff were rude.",
    "I hate waiting in line for hours, it's awful.",
    "The movie was boring and a complete waste of time.",
    "My order arrived broken and nobody helped me.",
    "The hotel room was dirty and smelled horrible.",
    "I'm very disappointed with the poor quality.",
    "The app keeps crashing and it is so frustrating.",
    "Sadly, the concert was cancelled and we lost our money.",
    "The food was cold, bland and overpriced.",
]

# (text, categories, expected top label)
CLASSIFY_CASES = [
    (
        "The striker scored twice in the second half and the team won the championship.",
        ["sports", "politics", "technology", "cooking"],
        "sports",
    ),
    (
        "Preheat the oven to 180 degrees and whisk the eggs with sugar until fluffy.",
        ["sports", "cooking", "finance", "travel"],
        "cooking",
    ),
    (
        "The central bank raised interest rates to fight inflation, and bond yields climbed.",
        ["finance", "health", "music", "sports"],
        "finance",
    ),
    (
        "The new smartphone ships with a faster chip and an improved camera sensor.",
        ["technology", "religion", "cooking", "weather"],
        "technology",
    ),
    (
        "Parliament passed the bill after a heated debate between the ruling party and the "
        "opposition.",
        ["politics", "sports", "science", "fashion"],
        "politics",
    ),
    (
        "Doctors recommend regular exercise and a balanced diet to lower blood pressure.",
        ["health", "finance", "music", "travel"],
        "health",
    ),
    (
        "Heavy rain and strong winds are expected tomorrow, with a chance of thunderstorms.",
        ["weather", "politics", "cooking", "technology"],
        "weather",
    ),
    (
        "We flew to Lisbon, explored the old town, and took a day trip to the coast.",
        ["travel", "finance", "science", "sports"],
        "travel",
    ),
    (
        "The app crashes every time I try to upload a photo; please fix this bug.",
        ["bug report", "feature request", "billing question", "praise"],
        "bug report",
    ),
    (
        "I was charged twice on my credit card for the same subscription this month.",
        ["bug report", "feature request", "billing question", "praise"],
        "billing question",
    ),
]

ARTICLE = (
    "Solar power is growing faster than any other source of electricity. "
    "Photovoltaic panels convert sunlight directly into electricity using semiconductor cells. "
    "The cost of solar panels has fallen by almost ninety percent over the last decade. "
    "Because sunlight is intermittent, solar farms are increasingly paired with batteries. "
    "Battery storage lets grid operators shift solar electricity into the evening peak. "
    "My neighbour painted his garage door green last summer. "
    "Analysts expect solar power to become the largest source of electricity by 2040. "
    "Governments support the expansion of solar energy with subsidies and auctions."
)


def test_sentiment_on_clear_sentences(analysis_service: AnalysisService) -> None:
    cases = [(t, "positive") for t in POSITIVE] + [(t, "negative") for t in NEGATIVE]
    correct = sum(analysis_service.sentiment(t).sentiment == want for t, want in cases)
    assert correct >= 18


def test_sentiment_result_fields(analysis_service: AnalysisService) -> None:
    positive = analysis_service.sentiment(POSITIVE[0])
    assert positive.score > 0.5 and 0.5 < positive.confidence <= 0.95
    assert set(positive.scores) == {"positive", "negative", "neutral"}
    assert sum(positive.scores.values()) == pytest.approx(1.0, abs=0.01)
    assert positive.provider == "local" and positive.model.startswith("vader-")
    neutral = analysis_service.sentiment("The meeting is at three o'clock in room four.")
    assert neutral.sentiment == "neutral" and neutral.score == 0
    mixed = analysis_service.sentiment("The food was great but the service was terrible.")
    assert mixed.sentiment == "mixed"


def test_sentiment_of_a_long_text_does_not_saturate(analysis_service: AnalysisService) -> None:
    text = " ".join(POSITIVE[:3] + NEGATIVE[:3])
    result = analysis_service.sentiment(text)
    assert abs(result.score) < 0.5  # whole-text VADER would push this toward +-1


def test_classify_top_label(analysis_service: AnalysisService) -> None:
    correct = 0
    for text, categories, expected in CLASSIFY_CASES:
        result = analysis_service.classify(text, categories)
        assert sum(c.confidence for c in result.classifications) == pytest.approx(1.0, abs=1e-5)
        correct += result.label == expected
    assert correct >= 8


def test_classify_result_shape(analysis_service: AnalysisService) -> None:
    text, categories, _ = CLASSIFY_CASES[0]
    result = analysis_service.classify(text, [*categories, " Sports ", "sports"])
    assert [c.category for c in result.classifications].count("sports") == 1
    assert len(result.classifications) == len(categories)
    confidences = [c.confidence for c in result.classifications]
    assert confidences == sorted(confidences, reverse=True)
    assert result.label == result.classifications[0].category
    assert result.text_preview == text  # short texts are previewed whole
    long_text = text + " It was the club's third title in five years, and fans celebrated."
    assert analysis_service.classify(long_text, categories).text_preview == long_text[:100] + "..."
    assert result.model == "zero-shot-all-MiniLM-L6-v2" and result.provider == "local"
    assert not result.multi_label


def test_classify_multi_label_scores_are_independent(analysis_service: AnalysisService) -> None:
    text = "The football club's shares jumped after it announced record ticket revenue."
    result = analysis_service.classify(
        text, ["sports", "finance", "cooking", "weather"], multi_label=True
    )
    scores = {c.category: c.confidence for c in result.classifications}
    assert all(0.0 <= s <= 1.0 for s in scores.values())
    assert min(scores["sports"], scores["finance"]) > max(scores["cooking"], scores["weather"])
    assert result.multi_label


def test_classify_rejects_only_blank_categories(analysis_service: AnalysisService) -> None:
    with pytest.raises(InvalidInput):
        analysis_service.classify("some text", ["  ", ""])


def test_keywords_find_the_topic(analysis_service: AnalysisService) -> None:
    result = analysis_service.keywords(ARTICLE, max_keywords=8)
    found = " ".join(k.keyword.lower() for k in result.keywords)
    assert "solar" in found and "electricity" in found
    assert 1 <= len(result.keywords) <= 8
    scores = [k.score for k in result.keywords]
    assert scores[0] == 1.0 and scores == sorted(scores, reverse=True)
    assert all(0.0 < s <= 1.0 for s in scores)
    lowered = [k.keyword.lower() for k in result.keywords]
    assert len(lowered) == len(set(lowered))
    assert result.model.startswith("yake-") and result.provider == "local"


def test_keywords_respect_max(analysis_service: AnalysisService) -> None:
    assert len(analysis_service.keywords(ARTICLE, max_keywords=2).keywords) == 2


@pytest.mark.parametrize("max_length", [10, 25, 40])
def test_summary_respects_max_length(analysis_service: AnalysisService, max_length: int) -> None:
    result = analysis_service.summarize(ARTICLE, max_length=max_length)
    assert 0 < result.word_count == word_count(result.summary) <= max_length
    assert result.model == "extractive-centrality+all-MiniLM-L6-v2"


def test_summary_uses_sentences_of_the_text_in_order(analysis_service: AnalysisService) -> None:
    sentences = split_sentences(ARTICLE)
    result = analysis_service.summarize(ARTICLE, max_length=40)
    picked = split_sentences(result.summary)
    assert picked and all(s in sentences for s in picked)
    positions = [sentences.index(s) for s in picked]
    assert positions == sorted(positions)
    # the off-topic sentence is the least central one
    assert "garage door" not in result.summary
    assert 1 <= len(result.key_points) <= 5
    assert all(p in sentences for p in result.key_points)
    assert "garage" not in result.key_points[0]


def test_analyze_runs_the_chosen_analyses(analysis_service: AnalysisService) -> None:
    full = analysis_service.analyze(ARTICLE)
    assert full.sentiment and full.summary and full.keywords
    assert full.word_count == len(ARTICLE.split()) and full.char_count == len(ARTICLE)
    assert full.provider == "local"
    only = analysis_service.analyze(ARTICLE, ["keywords"])
    assert only.sentiment is None and only.summary is None and only.keywords is not None
    assert only.model == only.keywords.model


def test_unknown_models_are_not_found(analysis_service: AnalysisService) -> None:
    with pytest.raises(UnknownModel, match="vader"):
        analysis_service.sentiment("fine", model="gpt-4o")
    with pytest.raises(UnknownModel, match="zero-shot-all-MiniLM-L6-v2"):
        analysis_service.classify("fine", ["a", "b"], model="nope")
    summary = analysis_service.summarize(ARTICLE, model="extractive-centrality+all-MiniLM-L6-v2")
    assert summary.summary


def test_generate_without_llm_is_unavailable(analysis_service: AnalysisService) -> None:
    with pytest.raises(ProviderUnavailable, match="LLM_PROVIDER=openai") as info:
        analysis_service.generate("Write a haiku")
    assert "OPENAI_API_KEY" in info.value.message and "OPENAI_BASE_URL" in info.value.message
    assert info.value.status_code == 503


def test_llm_factory_needs_openai_and_a_key() -> None:
    assert build_llm_provider(engine_settings()) is None
    assert build_llm_provider(engine_settings(llm_provider="openai")) is None
    assert build_llm_provider(engine_settings(openai_api_key=SECRET_KEY)) is None
    provider = build_llm_provider(engine_settings(llm_provider="openai", openai_api_key=SECRET_KEY))
    assert provider is not None and provider.provider == "openai"
