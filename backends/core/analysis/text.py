"""Plain-text helpers shared by the analysers: sentence splitting, word counts, previews."""

from __future__ import annotations

import re

# A sentence ends at . ! ? (optionally followed by closing quotes/brackets) before
# whitespace and an opening capital/digit/quote, or at a blank line / line break.
_SENTENCE_END = re.compile(
    r"(?<=[.!?])([\"')\]]*)\s+(?=[\"'(\[]?[A-Z0-9])|\n\s*\n|\n(?=\s*[-*\u2022])"
)
# Abbreviations that end in a period but rarely end a sentence.
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "inc"}
    | {"ltd", "co", "corp", "fig", "no", "approx", "dept", "est"}
)
_WORD = re.compile(r"\S+")


def words(text: str) -> list[str]:
    """Whitespace-separated words (the contract's word_count counts these)."""
    return _WORD.findall(text)


def word_count(text: str) -> int:
    return len(words(text))


def split_sentences(text: str) -> list[str]:
    """Sentences in order, whitespace-normalised; never empty for non-blank text."""
    pieces: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        # Keep closing quotes/brackets with the sentence they close.
        end = match.end(1) if match.group(1) is not None else match.start()
        candidate = text[start:end]
        last_word = candidate.rsplit(None, 1)[-1].lower().rstrip(".") if candidate.split() else ""
        if last_word in _ABBREVIATIONS or (len(last_word) == 1 and last_word.isalpha()):
            continue  # "Dr. Smith", "J. Doe": not a boundary
        pieces.append(candidate)
        start = match.end()
    pieces.append(text[start:])
    sentences = [" ".join(p.split()) for p in pieces]
    return [s for s in sentences if s]


def truncate_words(text: str, max_words: int) -> str:
    """The first ``max_words`` words of ``text`` (an ellipsis marks a cut)."""
    tokens = words(text)
    if len(tokens) <= max_words:
        return " ".join(tokens)
    return " ".join(tokens[:max_words]) + "..."


def preview(text: str, limit: int = 100) -> str:
    """The first ``limit`` characters, plus "..." when the text is longer."""
    return text if len(text) <= limit else text[:limit] + "..."
