"""Statistical keyword extraction with YAKE (offline, unsupervised, single document)."""

from __future__ import annotations

from importlib.metadata import version

from backends.core.analysis.results import Keyword, KeywordsResult

# Up to two words: YAKE's three-word candidates are mostly verb fragments
# ("panels convert sunlight"), while its bigrams are the noun phrases a reader expects.
_MAX_NGRAM = 2
# YAKE's own near-duplicate filter (sequence-matcher similarity); ours runs after it.
_YAKE_DEDUP = 0.8


def _key_tokens(phrase: str) -> frozenset[str]:
    """Lower-cased tokens with a plural "s" dropped, so "Networks" matches "network"."""
    return frozenset(
        t[:-1] if len(t) > 3 and t.endswith("s") else t for t in phrase.lower().split()
    )


class YakeKeywords:
    """Stateless apart from its model name; a new YAKE extractor per call is ~0.4 ms."""

    provider = "local"

    def __init__(self, language: str = "en") -> None:
        self.language = language
        self.model = f"yake-{version('yake')}"

    def extract(self, text: str, max_keywords: int = 10) -> KeywordsResult:
        import yake  # its import pulls in networkx & co: keep it off the start-up path

        extractor = yake.KeywordExtractor(
            lan=self.language,
            n=_MAX_NGRAM,
            dedup_lim=_YAKE_DEDUP,
            top=max(3 * max_keywords, 30),  # headroom for the filters below
        )
        candidates: list[tuple[str, float]] = [
            (str(phrase), float(score)) for phrase, score in extractor.extract_keywords(text)
        ]
        stopwords = {w.lower() for w in extractor.stopword_set}
        kept: list[tuple[str, float]] = []
        kept_tokens: list[frozenset[str]] = []
        for phrase, score in candidates:  # YAKE sorts best (lowest score) first
            words = phrase.lower().split()
            if any(w in stopwords for w in words):
                continue  # YAKE keeps stopwords inside phrases ("field of"): they read badly
            tokens = _key_tokens(phrase)
            # Drop repeats and parts of a better phrase ("power" after "solar power"); a
            # phrase that extends a better single word ("solar power" after "solar") stays.
            if any(tokens <= other for other in kept_tokens):
                continue
            kept.append((phrase, score))
            kept_tokens.append(tokens)
            if len(kept) == max_keywords:
                break
        return KeywordsResult(keywords=_relevance(kept), model=self.model, provider=self.provider)


def _relevance(ranked: list[tuple[str, float]]) -> list[Keyword]:
    """YAKE scores are lower-is-better and scale with text length: report best/score in (0, 1]."""
    if not ranked:
        return []
    best = max(ranked[0][1], 1e-12)
    return [Keyword(keyword=p, score=round(min(1.0, best / max(s, 1e-12)), 4)) for p, s in ranked]
