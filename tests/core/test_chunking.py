"""Property tests of the chunker: non-empty chunks within size, termination, full coverage."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.core.rag.chunking import chunk_spans, chunk_text, effective_overlap, min_step

# Text rich in the separators the chunker looks for, plus arbitrary characters.
_alphabet = st.sampled_from([*list("abcdefgh XYZ.!?\n\t"), ". ", "\n\n", "é", "漢", "🙂"])
texts = st.lists(_alphabet, max_size=800).map("".join) | st.text(max_size=600)
sizes = st.integers(min_value=1, max_value=300)
overlaps = st.integers(min_value=0, max_value=1000)


@settings(max_examples=300, deadline=None)
@given(text=texts, size=sizes, overlap=overlaps)
def test_chunks_are_nonempty_bounded_and_cover_the_text(text: str, size: int, overlap: int):
    chunks = chunk_spans(text, size, overlap)
    # Termination is implied by returning; the count bound makes it quantitative.
    assert len(chunks) <= len(text) // min_step(size, overlap) + 1
    for i, chunk in enumerate(chunks):
        assert chunk.index == i
        assert chunk.text
        assert chunk.text == chunk.text.strip()
        assert len(chunk.text) <= size
        assert chunk.end - chunk.start <= size
        assert chunk.text == text[chunk.start : chunk.end].strip()
    starts = [c.start for c in chunks]
    assert starts == sorted(set(starts))
    covered = [False] * len(text)
    for chunk in chunks:
        for pos in range(chunk.start, chunk.end):
            covered[pos] = True
    assert all(covered[pos] for pos, char in enumerate(text) if not char.isspace())


def test_overlap_is_clamped_to_half_the_chunk_size():
    assert effective_overlap(100, 1000) == 50
    assert effective_overlap(1000, 200) == 200
    # The reference looped forever on size 100 / overlap 1000: here it terminates.
    text = "word " * 2000
    chunks = chunk_spans(text, 100, 1000)
    assert 0 < len(chunks) <= len(text) // min_step(100, 1000) + 1


def test_prefers_sentence_ends_over_spaces():
    text = "First sentence is here. Second one follows it closely and runs on and on."
    chunks = chunk_text(text, chunk_size=40, overlap=0)
    assert chunks[0] == "First sentence is here."


def test_consecutive_chunks_overlap():
    text = " ".join(f"w{i:03d}" for i in range(400))
    chunks = chunk_spans(text, 200, 50)
    assert len(chunks) > 2
    for before, after in itertools.pairwise(chunks):
        assert after.start < before.end  # the overlap repeats context across the cut
        assert before.end - after.start == 50


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t"])
def test_blank_text_gives_no_chunks(text: str):
    assert chunk_text(text, 100, 10) == []


def test_short_text_is_one_chunk():
    assert chunk_text("  A short note.  ", 1000, 200) == ["A short note."]


def test_text_without_breaks_is_cut_hard():
    chunks = chunk_text("x" * 250, 100, 0)
    assert chunks == ["x" * 100, "x" * 100, "x" * 50]
