"""Checks of the per-response promises (`x-promises`): one function per `<operationId>/<id>`.

Each check sees one exchange (the request as sent, the response as received) and returns
None when the promise held, a sentence saying how it broke, or raises NotApplicable when
the exchange cannot tell (e.g. `unit-length` for a non-local provider). Relations between
operations live in `contract.scenarios`. Shapes are the core profile's job: a check that
cannot read a field it needs counts the exchange as not applicable.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shared_schemas.promises import (
    CALIBRATION_MIN_SAMPLES,
    SUM_TOLERANCE,
    UNIT_NORM_TOLERANCE,
)

REQUEST_ID_MAX = 128


class NotApplicable(Exception):
    """This exchange says nothing about the promise."""


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and its response, as the checks see them."""

    operation_id: str
    method: str
    url: str
    status: int
    request_headers: Mapping[str, str]
    response_headers: Mapping[str, str]  # lower-case names
    request_body: Any = None  # parsed JSON, or None
    body: Any = None  # parsed JSON response, or None
    raw_request_body: bytes | None = None
    contract_version: str = ""

    def sent(self, name: str, default: Any = None) -> Any:
        """A request body field (the contract's default when absent)."""
        if self.request_body is None:
            return default
        if not isinstance(self.request_body, dict):
            raise NotApplicable
        value = self.request_body.get(name, default)
        return default if value is None else value


Check = Callable[[Exchange], str | None]
CHECKS: dict[str, Check] = {}
ANY_STATUS: set[str] = set()  # checks that also look at non-2xx answers


def check(name: str, *, any_status: bool = False) -> Callable[[Check], Check]:
    def register(function: Check) -> Check:
        CHECKS[name] = function
        if any_status:
            ANY_STATUS.add(name)
        return function

    return register


def evaluate(exchange: Exchange, names: list[str]) -> dict[str, str | None]:
    """Run the checks of `names` (`<op>/<id>` or `*/<id>`) that apply: name -> problem/None."""
    verdicts: dict[str, str | None] = {}
    ok_json = 200 <= exchange.status < 300 and isinstance(exchange.body, dict)
    for name in names:
        key = name if name in CHECKS else "*/" + name.split("/", 1)[1]
        function = CHECKS.get(key)
        if function is None or not (ok_json or key in ANY_STATUS):
            continue
        try:
            verdicts[name] = function(exchange)
        except (NotApplicable, KeyError, TypeError, ValueError, AttributeError, IndexError):
            continue
    return verdicts


def known(name: str) -> bool:
    """Whether this suite has a per-response check for the promise `name`."""
    return name in CHECKS or "*/" + name.split("/", 1)[1] in CHECKS


def _close(a: float, b: float, tolerance: float) -> bool:
    return abs(a - b) <= tolerance


def _relative_close(a: float, b: float, fraction: float) -> bool:
    return abs(a - b) <= fraction * max(1.0, abs(b))


def _descending(values: list[float]) -> int | None:
    """Index of the first value greater than its predecessor, or None."""
    for i in range(1, len(values)):
        if values[i] > values[i - 1]:
            return i
    return None


def _norm(vector: list[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


# ---- every operation ------------------------------------------------------------------


@check("*/request-id-header", any_status=True)
def request_id_header(ex: Exchange) -> str | None:
    rid = ex.response_headers.get("x-request-id")
    if not rid:
        return f"{ex.status} response has no X-Request-ID header"
    sent = next((v for k, v in ex.request_headers.items() if k.lower() == "x-request-id"), "")
    echoable = 0 < len(sent) <= REQUEST_ID_MAX and all(0x21 <= ord(c) <= 0x7E for c in sent)
    if echoable and rid != sent:
        return f"sent X-Request-ID {sent!r}, got back {rid!r}"
    body_id = ex.body.get("request_id") if isinstance(ex.body, dict) else None
    if ex.status >= 400 and isinstance(body_id, str) and body_id != rid:
        return f"error body request_id {body_id!r} != header {rid!r}"
    return None


@check("health_status/contract-version")
def contract_version(ex: Exchange) -> str | None:
    if not ex.contract_version:
        raise NotApplicable
    version = ex.body["version"]
    if version != ex.contract_version:
        return f"version {version!r}, the contract is {ex.contract_version!r}"
    return None


# ---- embeddings ---------------------------------------------------------------------------


@check("embeddings_generate/dimensions-is-length")
def dimensions_is_length(ex: Exchange) -> str | None:
    n, dims = len(ex.body["embedding"]), ex.body["dimensions"]
    return None if n == dims else f"dimensions {dims} but the embedding has {n} entries"


def _unit_length(vectors: list[list[float]], provider: str) -> str | None:
    if provider != "local":
        raise NotApplicable
    for i, vector in enumerate(vectors):
        norm = _norm(vector)
        if not _close(norm, 1.0, UNIT_NORM_TOLERANCE):
            return f"vector {i} has L2 norm {norm:.6f}, not 1"
    return None


@check("embeddings_generate/unit-length")
def generate_unit_length(ex: Exchange) -> str | None:
    return _unit_length([ex.body["embedding"]], ex.body["provider"])


@check("embeddings_batch/unit-length")
def batch_unit_length(ex: Exchange) -> str | None:
    return _unit_length(ex.body["embeddings"], ex.body["provider"])


def _usage_total(usage: Mapping[str, int]) -> str | None:
    total = usage["prompt_tokens"] + usage["completion_tokens"]
    if usage["total_tokens"] != total:
        return f"total_tokens {usage['total_tokens']} != prompt + completion = {total}"
    return None


@check("embeddings_generate/usage-total")
def generate_usage(ex: Exchange) -> str | None:
    usage = ex.body["usage"]
    if usage["completion_tokens"] != 0:
        return f"completion_tokens {usage['completion_tokens']} for an embedding (must be 0)"
    return _usage_total(usage)


@check("embeddings_batch/usage-total")
@check("analysis_generate/usage-total")
def usage_total(ex: Exchange) -> str | None:
    return _usage_total(ex.body["usage"])


@check("embeddings_batch/one-per-text")
def one_per_text(ex: Exchange) -> str | None:
    texts = ex.sent("texts")
    if not isinstance(texts, list):
        raise NotApplicable
    vectors, dims = ex.body["embeddings"], ex.body["dimensions"]
    if ex.body["count"] != len(texts) or len(vectors) != len(texts):
        return f"{len(texts)} texts, count {ex.body['count']}, {len(vectors)} embeddings"
    wrong = [i for i, v in enumerate(vectors) if len(v) != dims]
    return f"vectors {wrong[:5]} do not have {dims} entries" if wrong else None


@check("embeddings_similarity/mirrors-text2")
def mirrors_text2(ex: Exchange) -> str | None:
    text2, similarity = ex.sent("text2"), ex.body["similarity"]
    if isinstance(text2, str):
        return (
            None
            if isinstance(similarity, int | float)
            else "text2 is a string: expected one number"
        )
    if not isinstance(similarity, list) or len(similarity) != len(text2):
        return f"text2 has {len(text2)} texts, similarity is {json.dumps(similarity)[:80]}"
    return None


@check("embeddings_models/one-default")
def one_default(ex: Exchange) -> str | None:
    defaults = [m["id"] for m in ex.body["models"] if m["default"]]
    return None if len(defaults) == 1 else f"{len(defaults)} default models: {defaults}"


# ---- rag ----------------------------------------------------------------------------------


@check("rag_index/counts-and-ids")
def index_counts(ex: Exchange) -> str | None:
    documents = ex.sent("documents")
    if not isinstance(documents, list):
        raise NotApplicable
    body = ex.body
    if body["indexed"] != len(documents) or len(body["ids"]) != len(documents):
        return f"{len(documents)} documents, indexed {body['indexed']}, {len(body['ids'])} ids"
    for i, (doc, given) in enumerate(zip(documents, body["ids"], strict=True)):
        if isinstance(doc, dict) and doc.get("id") is not None and doc["id"] != given:
            return f"documents[{i}].id is {doc['id']!r}, ids[{i}] is {given!r}"
    collection = ex.sent("collection", "default")
    if body["collection"] != collection:
        return f"collection {body['collection']!r}, requested {collection!r}"
    return None


@check("rag_index_document/chunking-used")
def chunking_used(ex: Exchange) -> str | None:
    size, overlap = ex.sent("chunk_size", 1000), ex.sent("chunk_overlap", 200)
    body, expected_overlap = ex.body, min(overlap, size // 2)
    if body["chunk_size"] != size:
        return f"chunk_size {body['chunk_size']}, requested {size}"
    if body["chunk_overlap"] != expected_overlap:
        return f"chunk_overlap {body['chunk_overlap']}, expected min({overlap}, {size} // 2)"
    for name, default in (("document_id", None), ("collection", "default")):
        if body[name] != ex.sent(name, default):
            return f"{name} {body[name]!r}, requested {ex.sent(name, default)!r}"
    return None


def _results(ex: Exchange) -> list[dict[str, Any]]:
    key = "sources" if ex.operation_id == "rag_query" else "results"
    results: list[dict[str, Any]] = ex.body[key]
    return results


@check("rag_search/top-k")
@check("rag_query/top-k")
def top_k(ex: Exchange) -> str | None:
    limit, results = ex.sent("top_k", 5), _results(ex)
    return None if len(results) <= limit else f"{len(results)} results for top_k {limit}"


@check("rag_search/best-first")
@check("rag_query/best-first")
def best_first(ex: Exchange) -> str | None:
    scores = [r["score"] for r in _results(ex)]
    at = _descending(scores)
    return None if at is None else f"score {scores[at]} at position {at} follows {scores[at - 1]}"


@check("rag_search/score-threshold")
@check("rag_query/score-threshold")
def score_threshold(ex: Exchange) -> str | None:
    threshold = ex.sent("score_threshold", 0.0)
    low = [r["score"] for r in _results(ex) if r["score"] < threshold]
    return f"scores {low[:5]} below score_threshold {threshold}" if low else None


@check("rag_search/filter")
@check("rag_query/filter")
def metadata_filter(ex: Exchange) -> str | None:
    wanted = ex.sent("filter")
    if not wanted:
        raise NotApplicable
    for r in _results(ex):
        for key, value in wanted.items():
            if key not in r["metadata"] or r["metadata"][key] != value:
                return f"result {r['id']!r} has metadata {r['metadata']!r}, filter {wanted!r}"
    return None


@check("rag_search/echo")
def search_echo(ex: Exchange) -> str | None:
    body, collection = ex.body, ex.sent("collection", "default")
    if body["query"] != ex.sent("query"):
        return f"query echoed as {body['query']!r}"
    if body["collection"] != collection:
        return f"collection {body['collection']!r}, requested {collection!r}"
    if body["total"] != len(body["results"]):
        return f"total {body['total']} for {len(body['results'])} results"
    return None


@check("rag_query/usage-total")
def query_usage(ex: Exchange) -> str | None:
    usage = ex.body["usage"]
    if ex.body["provider"] == "extractive":
        return None if usage is None else "provider extractive with a usage object"
    return "usage is null" if usage is None else _usage_total(usage)


@check("rag_collections/by-name")
def collections_by_name(ex: Exchange) -> str | None:
    names = [c["name"] for c in ex.body["collections"]]
    if names != sorted(names):
        first = next(i for i in range(1, len(names)) if names[i] < names[i - 1])
        return f"{names[first]!r} listed after {names[first - 1]!r}"
    return None if len(set(names)) == len(names) else "a collection is listed twice"


@check("rag_stats/totals")
def stats_totals(ex: Exchange) -> str | None:
    body, items = ex.body, ex.body["per_collection"]
    if len(items) >= 1000:
        raise NotApplicable
    expected = {
        "collections": len(items),
        "documents": sum(c["documents"] for c in items),
        "chunks": sum(c["chunks"] for c in items),
    }
    wrong = [
        f"{k} {body[k]} (per_collection says {v})" for k, v in expected.items() if body[k] != v
    ]
    return "; ".join(wrong) or None


# ---- analysis -----------------------------------------------------------------------------


@check("analysis_sentiment/shares-sum-to-one")
def shares_sum(ex: Exchange) -> str | None:
    shares = ex.body["scores"]
    total = shares["positive"] + shares["negative"] + shares["neutral"]
    return None if _close(total, 1.0, SUM_TOLERANCE) else f"shares sum to {total:.4f}"


@check("analysis_sentiment/label-matches-score")
def label_matches_score(ex: Exchange) -> str | None:
    label, score = ex.body["sentiment"], ex.body["score"]
    if (label == "positive" and score <= 0) or (label == "negative" and score >= 0):
        return f"sentiment {label!r} with score {score}"
    return None


@check("analysis_summarize/max-length")
def summary_max_length(ex: Exchange) -> str | None:
    limit, body = ex.sent("max_length", 100), ex.body
    words = len(body["summary"].split())
    if body["word_count"] != words:
        return f"word_count {body['word_count']}, the summary has {words} words"
    return None if words <= limit else f"{words} words for max_length {limit}"


@check("analysis_keywords/max-keywords")
def max_keywords(ex: Exchange) -> str | None:
    limit, found = ex.sent("max_keywords", 10), len(ex.body["keywords"])
    return None if found <= limit else f"{found} keywords for max_keywords {limit}"


@check("analysis_keywords/best-first")
def keywords_best_first(ex: Exchange) -> str | None:
    scores = [k["score"] for k in ex.body["keywords"]]
    at = _descending(scores)
    return None if at is None else f"score {scores[at]} at position {at} follows {scores[at - 1]}"


@check("analysis_analyze/counts")
def analyze_counts(ex: Exchange) -> str | None:
    text = ex.sent("text")
    if not isinstance(text, str):
        raise NotApplicable
    body = ex.body
    if body["word_count"] != len(text.split()):
        return f"word_count {body['word_count']}, the text has {len(text.split())} words"
    if body["char_count"] != len(text):
        return f"char_count {body['char_count']}, the text has {len(text)} code points"
    return None


@check("analysis_analyze/requested-only")
def requested_only(ex: Exchange) -> str | None:
    asked = set(ex.sent("analyses", ["sentiment", "summary", "keywords"]))
    for name in ("sentiment", "summary", "keywords"):
        present = ex.body[name] is not None
        if present != (name in asked):
            return f"{name} is {'present' if present else 'null'}; requested {sorted(asked)}"
    return None


@check("analysis_classify/distribution")
def classify_distribution(ex: Exchange) -> str | None:
    if ex.sent("multi_label", False):
        raise NotApplicable
    total = sum(c["confidence"] for c in ex.body["classifications"])
    return None if _close(total, 1.0, 1e-3) else f"confidences sum to {total:.6f}"


@check("analysis_classify/best-first")
def classify_best_first(ex: Exchange) -> str | None:
    items = ex.body["classifications"]
    at = _descending([c["confidence"] for c in items])
    if at is not None:
        return f"{items[at]['category']!r} ({items[at]['confidence']}) follows a lower score"
    if ex.body["label"] != items[0]["category"]:
        return f"label {ex.body['label']!r} but the best category is {items[0]['category']!r}"
    return None


@check("analysis_classify/each-category-once")
def each_category_once(ex: Exchange) -> str | None:
    expected: dict[str, str] = {}
    for category in ex.sent("categories"):
        label = category.strip()
        if label:
            expected.setdefault(label.casefold(), label)
    got = [c["category"] for c in ex.body["classifications"]]
    if sorted(got) != sorted(expected.values()):
        return f"categories {got[:8]}, expected each of {list(expected.values())[:8]} once"
    if ex.body["multi_label"] != ex.sent("multi_label", False):
        return f"multi_label {ex.body['multi_label']}, requested {ex.sent('multi_label', False)}"
    return None


@check("analysis_classify/text-preview")
def text_preview(ex: Exchange) -> str | None:
    text = ex.sent("text")
    expected = text if len(text) <= 100 else text[:100] + "..."
    preview = ex.body["text_preview"]
    return (
        None if preview == expected else f"text_preview {preview[:40]!r}... != {expected[:40]!r}..."
    )


@check("analysis_generate/max-tokens")
def generate_max_tokens(ex: Exchange) -> str | None:
    limit, used = ex.sent("max_tokens", 1000), ex.body["usage"]["completion_tokens"]
    return None if used <= limit else f"{used} completion tokens for max_tokens {limit}"


# ---- complexity ---------------------------------------------------------------------------


@check("complexity_pre_estimate/hours-in-range")
def hours_in_range(ex: Exchange) -> str | None:
    hours, span = ex.body["estimated_hours"], ex.body["hours_range"]
    if not span["min"] <= hours <= span["max"]:
        return f"estimated_hours {hours} outside hours_range {span['min']}..{span['max']}"
    return None


@check("complexity_pre_estimate/calibrated-after-enough-samples")
def calibrated_flag(ex: Exchange) -> str | None:
    body = ex.body
    expected = body["calibration_samples"] >= CALIBRATION_MIN_SAMPLES
    if body["calibrated"] != expected:
        return f"calibrated {body['calibrated']} with {body['calibration_samples']} samples"
    return None if body["provider"] == "heuristic" else f"provider {body['provider']!r}"


def _accuracy(pre: float, actual: float) -> float:
    return max(0.0, 100.0 - 25.0 * abs(pre - actual))


@check("complexity_post_analyze/total-lines")
def total_lines(ex: Exchange) -> str | None:
    metrics = ex.body["metrics"]
    total = metrics["lines_added"] + metrics["lines_removed"]
    if metrics["total_lines_changed"] != total:
        return f"total_lines_changed {metrics['total_lines_changed']} != added + removed = {total}"
    defaults = {"lines_added": 0, "lines_removed": 0, "files_changed": 0, "commits": 1}
    defaults |= {"review_comments": 0, "blockers": 0}
    for name, default in defaults.items():
        if metrics[name] != ex.sent(name, default):
            return f"metrics.{name} {metrics[name]}, requested {ex.sent(name, default)}"
    return None


@check("complexity_post_analyze/accuracy")
def post_accuracy(ex: Exchange) -> str | None:
    pre, body = ex.sent("pre_complexity_score"), ex.body
    if pre is None:
        if body["accuracy_score"] is not None or body["point_adjustment"] != 1:
            return "without pre_complexity_score: accuracy_score must be null, adjustment 1"
        return None
    expected = _accuracy(pre, body["actual_complexity"])
    got = body["accuracy_score"]
    if got is None or not _close(got, expected, 0.01):
        return f"accuracy_score {got} for pre {pre} / actual {body['actual_complexity']}"
    return None


@check("complexity_scale/levels-in-order")
def levels_in_order(ex: Exchange) -> str | None:
    scale = ex.body["scale"]
    if [level["level"] for level in scale] != [1, 2, 3, 4, 5]:
        return f"levels {[level['level'] for level in scale]}"
    for level in scale:
        if level["hours_min"] > level["hours_max"]:
            return f"level {level['level']}: hours_min > hours_max"
    points = [level["base_points"] for level in scale]
    at = next((i for i in range(1, 5) if points[i] <= points[i - 1]), None)
    return None if at is None else f"base_points {points} do not increase"


@check("complexity_calculate_adjustment/accuracy")
def adjustment_accuracy(ex: Exchange) -> str | None:
    pre, actual = ex.sent("pre_level"), ex.sent("actual_level")
    expected, got = _accuracy(pre, actual), ex.body["accuracy_score"]
    return None if _close(got, expected, 0.01) else f"accuracy_score {got}, expected {expected}"


@check("complexity_calculate_adjustment/direction")
def adjustment_direction(ex: Exchange) -> str | None:
    pre, actual = ex.sent("pre_level"), ex.sent("actual_level")
    expected = "underestimated" if actual > pre else "overestimated" if actual < pre else "accurate"
    got = ex.body["direction"]
    return None if got == expected else f"direction {got!r} for pre {pre} / actual {actual}"


@check("complexity_calculate_adjustment/bonus")
def adjustment_bonus(ex: Exchange) -> str | None:
    multiplier, bonus = ex.body["multiplier"], ex.body["bonus_percent"]
    expected = round((multiplier - 1) * 100)
    return None if bonus == expected else f"bonus_percent {bonus} for multiplier {multiplier}"


@check("complexity_calculate_adjustment/hours-ratio")
def hours_ratio(ex: Exchange) -> str | None:
    estimated, actual = ex.sent("estimated_hours"), ex.sent("actual_hours")
    if estimated is None or actual is None:
        raise NotApplicable
    expected, got = actual / estimated, ex.body["adjustment_factor"]
    if not _relative_close(got, expected, 1e-4):
        return f"adjustment_factor {got}, actual/estimated = {expected:.6g}"
    return None


# ---- transcription ------------------------------------------------------------------------


@check("transcription_estimate_cost/minutes-and-cost")
def minutes_and_cost(ex: Exchange) -> str | None:
    seconds, body = ex.sent("duration_seconds"), ex.body
    if not _relative_close(body["duration_seconds"], seconds, 1e-3):
        return f"duration_seconds {body['duration_seconds']}, requested {seconds}"
    if not _relative_close(body["duration_minutes"], seconds / 60, 1e-3):
        return f"duration_minutes {body['duration_minutes']} for {seconds} s"
    cost = body["duration_minutes"] * body["price_per_minute"]
    if not _relative_close(body["cost_usd"], cost, 1e-3):
        return f"cost_usd {body['cost_usd']}, minutes * price = {cost:.6g}"
    return None


@check("transcription_languages/by-code")
def languages_by_code(ex: Exchange) -> str | None:
    codes = [lang["code"] for lang in ex.body["languages"]]
    if codes != sorted(codes):
        return "languages are not sorted by code"
    return None if len(set(codes)) == len(codes) else "a language code is listed twice"
