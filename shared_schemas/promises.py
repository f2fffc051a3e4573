"""What each operation promises beyond its schema, keyed by operationId.

``contract/generate.py`` renders these into the spec twice: as text in each operation's
description (for people) and as the ``x-promises`` extension (for machines), a list of
``{"id", "kind", "statement"}``. The behaviour profile of ``python -m contract check``
reads ``x-promises`` from whatever spec it is given and checks each promise it knows by
its ``<operationId>/<id>`` name, so a third-party implementer sees exactly what is tested.

Kinds: ``range`` (a value's bounds), ``unit`` (a value's unit or formula), ``normalisation``,
``ordering``, ``sum``, ``limit`` (a limit taken from the request), ``echo`` (counts and
echoes that must agree with the request), ``header`` and ``relation`` (between operations:
checked by stateful scenarios on their own collections, which they delete afterwards).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PromiseKind = Literal[
    "range", "unit", "normalisation", "ordering", "sum", "limit", "echo", "header", "relation"
]

# Shared numbers the statements quote and the checks use.
UNIT_NORM_TOLERANCE = 1e-3
SUM_TOLERANCE = 1e-2
CALIBRATION_MIN_SAMPLES = 5
CALIBRATION_WINDOW = 50


@dataclass(frozen=True, slots=True)
class Promise:
    """One checkable statement about an operation's behaviour."""

    id: str
    kind: PromiseKind
    statement: str

    def as_extension(self) -> dict[str, str]:
        return {"id": self.id, "kind": self.kind, "statement": self.statement}


REQUEST_ID = Promise(
    "request-id-header",
    "header",
    "Every response carries an X-Request-ID header. A caller's X-Request-ID of 1..128 "
    "visible ASCII characters is echoed unchanged, and an error body's request_id equals it.",
)
"""Applies to every operation."""

_USAGE_TOTAL = Promise(
    "usage-total",
    "sum",
    "usage.total_tokens = usage.prompt_tokens + usage.completion_tokens.",
)
_UNIT_LENGTH = Promise(
    "unit-length",
    "normalisation",
    f'With provider "local" every vector has L2 norm 1 (within {UNIT_NORM_TOLERANCE:g}).',
)
_TOP_K = Promise("top-k", "limit", "At most top_k (default 5) results.")
_BEST_FIRST = Promise("best-first", "ordering", "Results by descending score.")
_THRESHOLD = Promise("score-threshold", "limit", "Every score is >= score_threshold (default 0).")
_FILTER = Promise(
    "filter",
    "limit",
    "With a filter, every result's metadata holds each filter key with an equal value.",
)
_ACCURACY = "accuracy_score = max(0, 100 - 25 * |estimated level - actual level|), within 0.01."

PROMISES: dict[str, tuple[Promise, ...]] = {
    "health_status": (
        Promise("contract-version", "echo", "version is the info.version of this contract."),
    ),
    "embeddings_generate": (
        Promise("dimensions-is-length", "echo", "dimensions is the length of embedding."),
        _UNIT_LENGTH,
        Promise(
            "usage-total",
            "sum",
            "usage.total_tokens = usage.prompt_tokens + usage.completion_tokens, and "
            "completion_tokens is 0.",
        ),
    ),
    "embeddings_batch": (
        Promise(
            "one-per-text",
            "limit",
            "count and the number of embeddings equal the number of texts; every vector has "
            "dimensions entries.",
        ),
        _UNIT_LENGTH,
        _USAGE_TOTAL,
        Promise(
            "same-as-single",
            "relation",
            "embeddings[i] is the vector /embeddings/generate returns for texts[i] "
            "(cosine >= 0.99): the output keeps the input order.",
        ),
    ),
    "embeddings_similarity": (
        Promise(
            "mirrors-text2",
            "echo",
            "similarity is one number when text2 is a string, else one number per text2 "
            "entry, in order.",
        ),
        Promise(
            "cosine-of-embeddings",
            "relation",
            "Each similarity is the cosine of the /embeddings/generate vectors of the two "
            "texts (within 0.01); a text compared with itself scores >= 0.99.",
        ),
    ),
    "embeddings_models": (Promise("one-default", "echo", "Exactly one model has default true."),),
    "rag_index": (
        Promise(
            "counts-and-ids",
            "echo",
            "indexed is the number of documents; ids has one id per document in request "
            "order (the document's own id when given); collection echoes the request "
            '(default "default").',
        ),
        Promise(
            "indexed-is-searchable",
            "relation",
            "A document indexed into a collection is the first result (score >= 0.99) of a "
            "search there for its exact text, and /rag/query cites it.",
        ),
        Promise(
            "reindex-replaces",
            "relation",
            "Indexing an id again replaces that document: a search finds the new text under "
            "the id, once, and the collection's document count does not grow.",
        ),
        Promise(
            "listed-with-counts",
            "relation",
            "After N documents with distinct ids go into a new collection, /rag/collections "
            "and /rag/stats list it with documents = chunks = N.",
        ),
    ),
    "rag_index_document": (
        Promise(
            "chunking-used",
            "limit",
            "chunk_size echoes the request (default 1000), chunk_overlap is "
            "min(requested, chunk_size // 2) (default 200), document_id and collection echo "
            "the request.",
        ),
        Promise(
            "reindex-document-replaces",
            "relation",
            "Indexing a document_id again reports its previous chunk count as replaced; "
            "afterwards the collection holds only the new chunks, each found with its "
            "document_id, a chunk_index below chunks and at most chunk_size characters.",
        ),
    ),
    "rag_search": (
        _TOP_K,
        _BEST_FIRST,
        _THRESHOLD,
        _FILTER,
        Promise(
            "echo",
            "echo",
            'query and collection echo the request (default "default"); total is the '
            "number of results.",
        ),
    ),
    "rag_query": (
        Promise("top-k", "limit", "At most top_k (default 5) sources."),
        Promise("best-first", "ordering", "Sources by descending score."),
        _THRESHOLD,
        _FILTER,
        Promise(
            "usage-total",
            "sum",
            'usage is null for provider "extractive"; otherwise usage.total_tokens = '
            "prompt_tokens + completion_tokens.",
        ),
    ),
    "rag_collections": (
        Promise("by-name", "ordering", "Collections sorted by name in code-point order, once."),
    ),
    "rag_delete_collection": (
        Promise(
            "deleted-is-gone",
            "relation",
            "The answer names the collection and the chunks it held; afterwards it is absent "
            "from /rag/collections and /rag/stats, searching it is 404 and deleting it "
            "again is 404.",
        ),
    ),
    "rag_stats": (
        Promise(
            "totals",
            "sum",
            "collections is the number of per_collection items; documents and chunks are "
            "their sums (while fewer than 1000 collections exist).",
        ),
        Promise(
            "same-as-collections",
            "relation",
            "per_collection holds the same collections with the same counts as /rag/collections.",
        ),
    ),
    "analysis_sentiment": (
        Promise(
            "shares-sum-to-one",
            "sum",
            f"scores.positive + scores.negative + scores.neutral = 1 (within {SUM_TOLERANCE:g}).",
        ),
        Promise(
            "label-matches-score",
            "range",
            'sentiment "positive" has score > 0 and "negative" has score < 0.',
        ),
    ),
    "analysis_summarize": (
        Promise(
            "max-length",
            "limit",
            "word_count is the number of whitespace-separated words of summary and is at most "
            "max_length (default 100).",
        ),
    ),
    "analysis_keywords": (
        Promise("max-keywords", "limit", "At most max_keywords (default 10) keywords."),
        Promise("best-first", "ordering", "Keywords by descending score."),
    ),
    "analysis_analyze": (
        Promise(
            "counts",
            "unit",
            "word_count is the number of whitespace-separated words of text and char_count "
            "its length in Unicode code points.",
        ),
        Promise(
            "requested-only",
            "echo",
            "sentiment, summary and keywords are non-null exactly for the requested analyses "
            "(default all three).",
        ),
    ),
    "analysis_classify": (
        Promise(
            "distribution",
            "sum",
            "Unless multi_label, the confidences sum to 1 (within 0.001).",
        ),
        Promise(
            "best-first",
            "ordering",
            "classifications by descending confidence; label is the first one's category.",
        ),
        Promise(
            "each-category-once",
            "echo",
            "Each distinct category appears exactly once (trimmed, compared "
            "case-insensitively, first spelling kept); multi_label echoes the request.",
        ),
        Promise(
            "text-preview",
            "echo",
            'text_preview is the first 100 characters of text, plus "..." when it is longer.',
        ),
    ),
    "analysis_generate": (
        _USAGE_TOTAL,
        Promise("max-tokens", "limit", "usage.completion_tokens <= max_tokens (default 1000)."),
        Promise(
            "stream-adds-up",
            "relation",
            "With stream: true a 200 is text/event-stream: token events (GenerateToken), then "
            "one done event (a GenerateResponse) last; the token texts joined are its text "
            "(surrounding whitespace aside).",
        ),
    ),
    "complexity_pre_estimate": (
        Promise(
            "hours-in-range",
            "range",
            "hours_range.min <= estimated_hours <= hours_range.max.",
        ),
        Promise(
            "calibrated-after-enough-samples",
            "echo",
            f"calibrated is true exactly when calibration_samples >= "
            f'{CALIBRATION_MIN_SAMPLES}; provider is "heuristic".',
        ),
        Promise(
            "matches-scale",
            "relation",
            "complexity_name, estimated_points and hours_range are those of level "
            "complexity_score in /complexity/scale.",
        ),
        Promise(
            "post-analysis-calibrates",
            "relation",
            "A post-analysis sent with pre_complexity_score and task_type is a calibration "
            "sample: the next pre-estimate of that issue_type counts one more "
            f"calibration_sample (the most recent {CALIBRATION_WINDOW} count).",
        ),
    ),
    "complexity_post_analyze": (
        Promise(
            "total-lines",
            "sum",
            "metrics.total_lines_changed = lines_added + lines_removed, and metrics echo "
            "the request (defaults applied).",
        ),
        Promise(
            "accuracy",
            "unit",
            f"{_ACCURACY} Without pre_complexity_score it is null and point_adjustment is 1.",
        ),
    ),
    "complexity_scale": (
        Promise(
            "levels-in-order",
            "ordering",
            "Levels 1..5 in order; hours_min <= hours_max; base_points increase with the level.",
        ),
    ),
    "complexity_calculate_adjustment": (
        Promise("accuracy", "unit", _ACCURACY),
        Promise(
            "direction",
            "echo",
            'direction is "underestimated" when actual_level > pre_level, "overestimated" '
            'when lower, "accurate" when equal.',
        ),
        Promise("bonus", "sum", "bonus_percent = round((multiplier - 1) * 100)."),
        Promise(
            "hours-ratio",
            "unit",
            "With estimated_hours and actual_hours, adjustment_factor = actual_hours / "
            "estimated_hours (within 0.01%).",
        ),
    ),
    "transcription_estimate_cost": (
        Promise(
            "minutes-and-cost",
            "unit",
            "duration_seconds echoes the request; duration_minutes = duration_seconds / 60; "
            "cost_usd = duration_minutes * price_per_minute (each within 0.1%).",
        ),
    ),
    "transcription_languages": (
        Promise("by-code", "ordering", "Languages sorted by code, each code once."),
    ),
}


def promises_for(operation_id: str) -> tuple[Promise, ...]:
    """Every promise of an operation: the ones every operation makes, then its own."""
    return (REQUEST_ID, *PROMISES.get(operation_id, ()))
