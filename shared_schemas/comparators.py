"""How two answers to the same request are compared, declared once per operation.

Used by ``contract check --compare`` (generated cases sent to two servers) and by the
gateway's shadow mode (live traffic mirrored to a candidate backend). A comparison walks
both JSON bodies together and returns the fields that differ, each with its JSON path
(``$.results[0].score``). Rules are keyed by a field pattern: the path with list indices
written ``[]`` (``results[].score``); a field without a rule must be equal, except floats,
which may differ by ``FLOAT_TOLERANCE`` (two backends run the same model, but BLAS
summation order differs between processes in the last digits).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared_schemas.operations import OPERATIONS

# Fields that identify or time one answer: never equal between two answers.
ALWAYS_IGNORED = frozenset(
    {"request_id", "timestamp", "created_at", "latency_ms", "duration_ms", "cached"}
)
FLOAT_TOLERANCE = 1e-6
# Kept short: a value shown as an example of a difference, not a copy of the payload.
_SHOWN_CHARS = 200


@dataclass(frozen=True, slots=True)
class Exact:
    """Equal values (floats within ``FLOAT_TOLERANCE``)."""


@dataclass(frozen=True, slots=True)
class Ignore:
    """Not compared (the value is expected to differ)."""


@dataclass(frozen=True, slots=True)
class Close:
    """Numbers within an absolute tolerance (scores, confidences)."""

    tolerance: float


@dataclass(frozen=True, slots=True)
class Cosine:
    """Vectors pointing the same way: cosine similarity at least ``minimum``."""

    minimum: float = 0.999


@dataclass(frozen=True, slots=True)
class TopK:
    """Rankings: the ids (``key`` of each item) of the first ``k`` items overlap enough.

    The items themselves are then compared position by position only where both sides
    agree on the id, so a swapped pair of near-equal scores is not reported twice.

    With ``score`` named, equal scores have no order: an id only one side ranks in its
    top ``k`` still counts as shared when its score is within ``tie`` of the other side's
    cut-off (the ``k``-th score), because the other side could have ranked it there. Two
    documents of the same text score alike, and which of them fills the last place then
    depends on the last bits of the query vector.
    """

    key: str
    k: int = 5
    minimum_overlap: float = 1.0
    score: str | None = None
    tie: float = 0.0


@dataclass(frozen=True, slots=True)
class WordErrorRate:
    """Transcripts: the word error rate of one against the other at most ``maximum``."""

    maximum: float = 0.1


@dataclass(frozen=True, slots=True)
class GeneratedText:
    """Generated text: exact when the request's temperature is 0, else only its shape."""

    temperature_field: str = "temperature"
    default_temperature: float = 0.0


@dataclass(frozen=True, slots=True)
class AsSet:
    """Unordered lists: the same items in any order."""


Rule = Exact | Ignore | Close | Cosine | TopK | WordErrorRate | GeneratedText | AsSet


@dataclass(frozen=True, slots=True)
class FieldDiff:
    """One field on which two answers differ."""

    path: str  # the concrete JSON path: $.results[0].score
    pattern: str  # the same with list indices as []: results[].score (the rule's key)
    rule: str  # the rule that failed: exact, close, cosine, ...
    detail: str
    primary: Any = None
    candidate: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "field": self.pattern,
            "rule": self.rule,
            "detail": self.detail,
            "primary": shown(self.primary),
            "candidate": shown(self.candidate),
        }


@dataclass(frozen=True, slots=True)
class Comparator:
    """The comparison rules of one operation."""

    rules: Mapping[str, Rule] = field(default_factory=dict)
    # The same request may get a different answer from the same backend (sampling,
    # latency in the body): the gateway measures the primary's own variation and only
    # reports a candidate's difference beyond it.
    deterministic: bool = True

    def diff(self, primary: Any, candidate: Any, request: Any = None) -> list[FieldDiff]:
        """Fields on which ``candidate`` differs from ``primary`` (empty: they match)."""
        walk = _Walk(self.rules, request if isinstance(request, dict) else {})
        walk.compare("$", "", primary, candidate)
        return walk.found


def _pattern_join(pattern: str, name: str) -> str:
    return f"{pattern}.{name}" if pattern else name


class _Walk:
    def __init__(self, rules: Mapping[str, Rule], request: dict[str, Any]) -> None:
        self.rules = rules
        self.request = request
        self.found: list[FieldDiff] = []

    def differ(self, path: str, pattern: str, rule: str, detail: str, a: Any, b: Any) -> None:
        self.found.append(FieldDiff(path, pattern or "$", rule, detail, a, b))

    def compare(self, path: str, pattern: str, a: Any, b: Any) -> None:
        rule = self.rules.get(pattern or "$", Exact())
        if isinstance(rule, Ignore):
            return
        if isinstance(rule, Exact) or (a is None) != (b is None):
            self.structural(path, pattern, a, b)
        elif isinstance(rule, Close):
            if isinstance(a, list) and isinstance(b, list):  # one or many scores
                self.structural(path, pattern, a, b)
            elif not (_is_number(a) and _is_number(b)) or abs(a - b) > rule.tolerance:
                self.differ(path, pattern, "close", f"differ by more than {rule.tolerance}", a, b)
        elif isinstance(rule, Cosine):
            similarity = cosine(a, b)
            if similarity is None or similarity < rule.minimum:
                shown_sim = "not comparable" if similarity is None else f"{similarity:.6f}"
                self.differ(path, pattern, "cosine", f"cosine {shown_sim} < {rule.minimum}", a, b)
        elif isinstance(rule, TopK):
            self.ranking(path, pattern, rule, a, b)
        elif isinstance(rule, WordErrorRate):
            rate = word_error_rate(str(a), str(b))
            if rate > rule.maximum:
                self.differ(path, pattern, "wer", f"word error rate {rate:.3f}", a, b)
        elif isinstance(rule, GeneratedText):
            temperature = self.request.get(rule.temperature_field, rule.default_temperature)
            if temperature == 0:
                if a != b:
                    self.differ(path, pattern, "exact", "generated text at temperature 0", a, b)
            elif type(a) is not type(b):
                self.differ(path, pattern, "shape", "different types", a, b)
        elif isinstance(rule, AsSet):
            if not isinstance(a, list) or not isinstance(b, list):
                self.structural(path, pattern, a, b)
            elif sorted(map(_canonical, a)) != sorted(map(_canonical, b)):
                self.differ(path, pattern, "set", "different items", a, b)

    def structural(self, path: str, pattern: str, a: Any, b: Any) -> None:
        """Equal by shape, recursing into objects and lists; floats within the tolerance."""
        if isinstance(a, dict) and isinstance(b, dict):
            for name in sorted(a.keys() | b.keys()):
                if name in ALWAYS_IGNORED:
                    continue
                child = f"{path}.{name}"
                if name not in a or name not in b:
                    where = "primary" if name in a else "candidate"
                    self.differ(
                        child, _pattern_join(pattern, name), "missing",
                        f"only in the {where}", a.get(name), b.get(name),
                    )  # fmt: skip
                    continue
                self.compare(child, _pattern_join(pattern, name), a[name], b[name])
        elif isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                self.differ(path, pattern, "length", f"{len(a)} vs {len(b)} items", a, b)
                return
            for index, (x, y) in enumerate(zip(a, b, strict=True)):
                self.compare(f"{path}[{index}]", pattern + "[]", x, y)
        elif _is_number(a) and _is_number(b) and (isinstance(a, float) or isinstance(b, float)):
            if not math.isclose(a, b, rel_tol=FLOAT_TOLERANCE, abs_tol=FLOAT_TOLERANCE):
                self.differ(path, pattern, "exact", "different numbers", a, b)
        elif type(a) is not type(b) or a != b:
            self.differ(path, pattern, "exact", "different values", a, b)

    def ranking(self, path: str, pattern: str, rule: TopK, a: Any, b: Any) -> None:
        if not isinstance(a, list) or not isinstance(b, list):
            self.structural(path, pattern, a, b)
            return
        ids_a = [_key_of(item, rule.key) for item in a[: rule.k]]
        ids_b = [_key_of(item, rule.key) for item in b[: rule.k]]
        wanted = max(len(ids_a), len(ids_b))
        shared = len(set(ids_a) & set(ids_b))
        if shared < wanted and _tied_at_cutoff(rule, a, b) and _tied_at_cutoff(rule, b, a):
            shared = wanted
        overlap = shared / wanted if wanted else 1.0
        if overlap < rule.minimum_overlap:
            detail = f"top-{rule.k} overlap {overlap:.2f} < {rule.minimum_overlap}"
            if rule.score is not None:  # what a tie would have had to match
                cutoffs = [
                    _score_of(side[-1], rule.score) if side else None
                    for side in (a[: rule.k], b[: rule.k])
                ]
                detail += f" (last {rule.score}s {cutoffs[0]} / {cutoffs[1]})"
            self.differ(path, pattern, "top_k", detail, ids_a, ids_b)
            return
        by_id = {_key_of(item, rule.key): item for item in b}
        for index, item in enumerate(a[: rule.k]):
            other = by_id.get(_key_of(item, rule.key))
            if other is not None:
                self.compare(f"{path}[{index}]", pattern + "[]", item, other)


def _tied_at_cutoff(rule: TopK, ranked: list[Any], other: list[Any]) -> bool:
    """Whether every id of ``ranked``'s top k missing from ``other``'s top k ties with
    ``other``'s k-th score (so ``other`` could have ranked it in its place)."""
    if rule.score is None or len(other) < rule.k:  # a short list was not cut: nothing tied out
        return False
    cutoff = _score_of(other[rule.k - 1], rule.score)
    if cutoff is None:
        return False
    kept = {_key_of(item, rule.key) for item in other[: rule.k]}
    # the other side's own score for an id when it lists it further down
    scored = {_key_of(item, rule.key): _score_of(item, rule.score) for item in other}
    for item in ranked[: rule.k]:
        key = _key_of(item, rule.key)
        if key in kept:
            continue
        score = scored[key] if key in scored else _score_of(item, rule.score)
        if score is None or abs(score - cutoff) > rule.tie:
            return False
    return True


def _score_of(item: Any, name: str) -> float | None:
    value: Any = item.get(name) if isinstance(item, dict) else None
    return float(value) if _is_number(value) else None


def _key_of(item: Any, key: str) -> str:
    return str(item.get(key)) if isinstance(item, dict) else _canonical(item)


def _canonical(value: Any) -> str:
    return repr(sorted(value.items())) if isinstance(value, dict) else repr(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def cosine(a: Any, b: Any) -> float | None:
    """Cosine similarity of two equal-length number lists; None when not comparable."""
    if not isinstance(a, list) or not isinstance(b, list) or len(a) != len(b) or not a:
        return None
    if not all(_is_number(x) for x in a) or not all(_is_number(y) for y in b):
        return None
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    if norm == 0:
        return 1.0 if a == b else 0.0
    return float(dot / norm)


_WORD = re.compile(r"[\w']+")


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, case and punctuation aside."""
    ref = _WORD.findall(reference.lower())
    hyp = _WORD.findall(hypothesis.lower())
    if not ref:
        return 0.0 if not hyp else 1.0
    previous = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, 1):
        current = [i]
        for j, other in enumerate(hyp, 1):
            cost = 0 if word == other else 1
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost))
        previous = current
    return previous[-1] / len(ref)


def shown(value: Any) -> Any:
    """A value cut to a size fit for a report (long strings and lists shortened)."""
    if isinstance(value, str) and len(value) > _SHOWN_CHARS:
        return value[:_SHOWN_CHARS] + "..."
    if isinstance(value, list) and len(value) > 8:
        return [*value[:8], f"... {len(value) - 8} more"]
    if isinstance(value, dict):
        text = repr(value)
        return value if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."
    return value


_SCORE = Close(1e-4)  # model scores printed with 4 digits in the examples; a real change is larger
_RESULTS: dict[str, Rule] = {
    "results": TopK("document_id", score="score", tie=_SCORE.tolerance),
    "results[].score": _SCORE,
}

COMPARATORS: dict[str, Comparator] = {
    "health_status": Comparator({"backend": Ignore(), "service": Ignore()}),
    "health_ready": Comparator({"checks": Ignore()}, deterministic=False),
    "health_live": Comparator(),
    "embeddings_generate": Comparator({"embedding": Cosine()}),
    "embeddings_batch": Comparator({"embeddings[]": Cosine()}),
    "embeddings_similarity": Comparator({"similarity": _SCORE, "similarity[]": _SCORE}),
    "embeddings_models": Comparator({"models": AsSet()}),
    "rag_index": Comparator({"ids": AsSet()}),
    "rag_index_document": Comparator(),
    "rag_search": Comparator(_RESULTS),
    "rag_query": Comparator(
        {
            "answer": GeneratedText(),
            "sources": TopK("document_id", score="score", tie=_SCORE.tolerance),
            "sources[].score": _SCORE,
        },
        deterministic=False,
    ),
    "rag_collections": Comparator({"collections": AsSet()}),
    "rag_delete_collection": Comparator(),
    # queries counts searches, mirrored ones too: it moves between the two answers
    "rag_stats": Comparator({"per_collection": AsSet(), "queries": Ignore()}),
    "analysis_analyze": Comparator(
        {
            "sentiment.score": _SCORE,
            "sentiment.confidence": _SCORE,
            "sentiment.scores.positive": _SCORE,
            "sentiment.scores.negative": _SCORE,
            "sentiment.scores.neutral": _SCORE,
            "keywords.keywords": TopK("keyword", score="score", tie=_SCORE.tolerance),
            "keywords.keywords[].score": _SCORE,
        }
    ),
    "analysis_generate": Comparator(
        {"text": GeneratedText(), "usage": Ignore(), "finish_reason": Ignore()},
        deterministic=False,
    ),
    "analysis_classify": Comparator(
        {
            "classifications": TopK("category", score="confidence", tie=_SCORE.tolerance),
            "classifications[].confidence": _SCORE,
        }
    ),
    "analysis_summarize": Comparator({"key_points": AsSet()}),
    "analysis_sentiment": Comparator(
        {
            "score": _SCORE,
            "confidence": _SCORE,
            "scores.positive": _SCORE,
            "scores.negative": _SCORE,
            "scores.neutral": _SCORE,
        }
    ),
    "analysis_keywords": Comparator(
        {
            "keywords": TopK("keyword", score="score", tie=_SCORE.tolerance),
            "keywords[].score": _SCORE,
        }
    ),
    # calibration_samples grows when post-analyze records a sample between the two requests
    "complexity_pre_estimate": Comparator(
        {"calibration_samples": Ignore(), "calibrated": Ignore(), "estimated_hours": _SCORE},
    ),
    "complexity_post_analyze": Comparator(),
    "complexity_scale": Comparator(),
    "complexity_calculate_adjustment": Comparator(),
    "complexity_health": Comparator({"detail": Ignore()}),
    "transcription_transcribe": Comparator(
        {"text": WordErrorRate(), "duration": Close(0.05), "segments": Ignore(), "words": Ignore()}
    ),
    "transcription_transcribe_base64": Comparator(
        {"text": WordErrorRate(), "duration": Close(0.05), "segments": Ignore(), "words": Ignore()}
    ),
    # encoders stamp their version and timestamps into the container: only status and type
    "transcription_convert": Comparator({"$": Ignore()}),
    "transcription_estimate_cost": Comparator(),
    "transcription_formats": Comparator({"input_formats": AsSet()}),
    "transcription_languages": Comparator({"languages": AsSet()}),
    "transcription_health": Comparator({"detail": Ignore()}),
}


def comparator_for(operation_id: str) -> Comparator:
    """The comparator of an operation (KeyError for an id not in the registry)."""
    return COMPARATORS[operation_id]


def check_comparators() -> None:
    """Every operation of the registry has a comparator and no comparator is left over."""
    ids = {op.operation_id for op in OPERATIONS}
    missing = sorted(ids - COMPARATORS.keys())
    extra = sorted(COMPARATORS.keys() - ids)
    if missing or extra:
        raise RuntimeError(
            f"shared_schemas/comparators.py is out of step with the operation registry: "
            f"missing {missing}, unknown {extra}"
        )
