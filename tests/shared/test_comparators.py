"""The per-operation comparators: what counts as the same answer, and where it differs."""

from __future__ import annotations

from typing import Any

import pytest

from shared_schemas.comparators import (
    COMPARATORS,
    check_comparators,
    comparator_for,
    cosine,
    word_error_rate,
)


def test_every_operation_has_a_comparator() -> None:
    check_comparators()


def _paths(operation_id: str, a: Any, b: Any, request: Any = None) -> list[str]:
    return [diff.path for diff in comparator_for(operation_id).diff(a, b, request)]


@pytest.mark.parametrize(
    ("operation_id", "a", "b", "expected"),
    [
        # embeddings: the direction matters, not the last digits
        ("embeddings_generate", {"embedding": [1.0, 2.0, 3.0]}, {"embedding": [1.0, 2.0, 3.001]},
         []),
        ("embeddings_generate", {"embedding": [1.0, 2.0, 3.0]}, {"embedding": [3.0, 2.0, 1.0]},
         ["$.embedding"]),
        ("embeddings_batch", {"embeddings": [[1.0, 0.0], [0.0, 1.0]]},
         {"embeddings": [[1.0, 0.0], [1.0, 0.0]]}, ["$.embeddings[1]"]),
        # scores within 1e-4
        ("analysis_sentiment", {"score": 0.5}, {"score": 0.50005}, []),
        ("analysis_sentiment", {"score": 0.5}, {"score": 0.52}, ["$.score"]),
        # rankings: same top ids in order; scores then compared per id
        ("rag_search", {"results": [{"document_id": "a", "score": 0.9}]},
         {"results": [{"document_id": "b", "score": 0.9}]}, ["$.results"]),
        ("rag_search", {"results": [{"document_id": "a", "score": 0.9}]},
         {"results": [{"document_id": "a", "score": 0.7}]}, ["$.results[0].score"]),
        # unordered lists
        ("transcription_formats", {"input_formats": ["wav", "mp3"]},
         {"input_formats": ["mp3", "wav"]}, []),
        # request ids, timestamps and timings never count
        ("health_live", {"live": True, "timestamp": "1"}, {"live": True, "timestamp": "2"}, []),
        # a missing field is named
        ("complexity_scale", {"scale": [], "x": 1}, {"scale": []}, ["$.x"]),
        # transcripts by word error rate (1 word in 20 is 0.05 <= 0.1)
        ("transcription_transcribe", {"text": " ".join(["word"] * 20), "duration": 1.0},
         {"text": " ".join(["word"] * 19 + ["bird"]), "duration": 1.01}, []),
        ("transcription_transcribe", {"text": "the cat sat", "duration": 1.0},
         {"text": "a dog ran", "duration": 1.0}, ["$.text"]),
    ],
)  # fmt: skip
def test_differences_are_named_by_path(
    operation_id: str, a: Any, b: Any, expected: list[str]
) -> None:
    assert _paths(operation_id, a, b) == expected


def _ranked(*pairs: tuple[str, float]) -> dict[str, Any]:
    return {"results": [{"document_id": doc, "score": score} for doc, score in pairs]}


_FIRST_FOUR = (("a", 0.9), ("b", 0.8), ("c", 0.7), ("d", 0.6))


def test_a_tie_at_the_cut_off_may_be_filled_by_either_document() -> None:
    # e and f score alike: which one takes fifth place is not a difference
    a = _ranked(*_FIRST_FOUR, ("e", 0.5), ("f", 0.5))
    b = _ranked(*_FIRST_FOUR, ("f", 0.50003), ("e", 0.5))
    assert _paths("rag_search", a, b) == []


def test_a_different_document_above_the_cut_off_is_still_a_difference() -> None:
    a = _ranked(*_FIRST_FOUR, ("e", 0.5), ("f", 0.4))
    b = _ranked(*_FIRST_FOUR, ("f", 0.5), ("e", 0.4))
    assert _paths("rag_search", a, b) == ["$.results"]
    # a tie below the cut-off does not excuse a different document at it
    c = _ranked(("a", 0.9), ("b", 0.8), ("c", 0.7), ("x", 0.6), ("e", 0.5))
    assert _paths("rag_search", _ranked(*_FIRST_FOUR, ("e", 0.5)), c) == ["$.results"]


def test_a_short_list_has_no_cut_off_to_tie_at() -> None:
    a = _ranked(("a", 0.9), ("b", 0.5))
    b = _ranked(("a", 0.9), ("c", 0.5))
    assert _paths("rag_search", a, b) == ["$.results"]
    assert _paths("rag_search", a, _ranked()) == ["$.results"]


def test_a_ranking_difference_shows_both_cut_off_scores() -> None:
    a = _ranked(*_FIRST_FOUR, ("e", 0.5))
    b = _ranked(*_FIRST_FOUR, ("x", 0.45))
    (diff,) = comparator_for("rag_search").diff(a, b)
    assert diff.detail == "top-5 overlap 0.80 < 1.0 (last scores 0.5 / 0.45)"


@pytest.mark.parametrize(("temperature", "expected"), [(0, ["$.text"]), (0.8, [])])
def test_generated_text_is_exact_only_at_temperature_zero(
    temperature: float, expected: list[str]
) -> None:
    a, b = {"text": "one answer"}, {"text": "another answer"}
    assert _paths("analysis_generate", a, b, {"temperature": temperature}) == expected


def test_generated_text_keeps_its_shape() -> None:
    assert _paths("analysis_generate", {"text": "x"}, {"text": 3}, {"temperature": 1}) == ["$.text"]


def test_difference_carries_both_values_and_the_rule() -> None:
    (diff,) = comparator_for("analysis_sentiment").diff({"score": 0.5}, {"score": 0.9})
    assert diff.as_dict() == {
        "path": "$.score",
        "field": "score",
        "rule": "close",
        "detail": "differ by more than 0.0001",
        "primary": 0.5,
        "candidate": 0.9,
    }


def test_helpers() -> None:
    assert cosine([1.0, 0.0], [0.0, 1.0]) == 0.0
    assert cosine([1.0], [1.0, 2.0]) is None
    assert word_error_rate("a b c d", "a x c") == 0.5
    assert len(COMPARATORS) == 32
