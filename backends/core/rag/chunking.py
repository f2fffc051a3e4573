"""Sentence-aware text chunking (the reference's algorithm with its defects fixed).

Lengths are counted in characters (Python code points). A window ``[start, start +
chunk_size)`` is cut back to a break point when it ends inside the text; the chunk is the
window stripped of surrounding whitespace (skipped when empty), and the next window starts
``overlap`` characters before the cut.

Fixes over the reference:
- ``overlap`` is clamped to ``chunk_size // 2`` (the reference let overlap >= size pass,
  and then ``start`` never moved: an endless loop).
- A break point only counts in the second part of the window (at least ``overlap +
  (chunk_size - overlap) // 2`` characters in), so every step advances ``start`` by at
  least ``min_step(...)`` characters: the loop terminates and a text of ``n`` characters
  gives at most ``n // min_step + 1`` chunks. (The reference accepted a break right after
  ``start``, which with any overlap could move ``start`` backwards.)
- Breaks are chosen by strength, not just distance: the farthest sentence or line end in
  that part of the window, else the farthest space, else a hard cut. The reference took
  the farthest of all separators, which is nearly always a space mid-sentence.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_CHUNK_SIZE = 1000
DEFAULT_OVERLAP = 200
# Strongest first; within a class the farthest occurrence wins.
_BREAK_CLASSES: tuple[tuple[str, ...], ...] = (
    ("\n\n", ". ", "! ", "? ", "\n"),
    (" ", "\t"),
)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A chunk's text (stripped) and the window ``[start, end)`` of the source it came from."""

    index: int
    text: str
    start: int
    end: int


def effective_overlap(chunk_size: int, overlap: int) -> int:
    """The overlap actually used: ``min(overlap, chunk_size // 2)``, never negative."""
    return max(0, min(overlap, chunk_size // 2))


def min_step(chunk_size: int, overlap: int) -> int:
    """The least distance between consecutive window starts (bounds the chunk count)."""
    used = effective_overlap(chunk_size, overlap)
    return max(1, (chunk_size - used + 1) // 2)


def _cut(text: str, start: int, end: int, earliest: int) -> int:
    """Where the window ``[start, end)`` should end: just after the best break point."""
    for separators in _BREAK_CLASSES:
        best = max(text.rfind(sep, earliest, end) for sep in separators)
        if best >= earliest:
            return best + 1
    return end


def chunk_spans(text: str, chunk_size: int, overlap: int) -> list[Chunk]:
    """Chunks of ``text`` with their source windows; empty or blank text gives none."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    used = effective_overlap(chunk_size, overlap)
    step = min_step(chunk_size, overlap)
    chunks: list[Chunk] = []
    start, length = 0, len(text)
    while start < length:
        end = min(start + chunk_size, length)
        if end < length:
            end = _cut(text, start, end, earliest=start + used + step - 1)
        piece = text[start:end].strip()
        if piece:
            chunks.append(Chunk(index=len(chunks), text=piece, start=start, end=end))
        if end >= length:
            break
        start = end - used
    return chunks


def chunk_text(
    text: str, chunk_size: int = DEFAULT_CHUNK_SIZE, overlap: int = DEFAULT_OVERLAP
) -> list[str]:
    """The chunk texts only."""
    return [c.text for c in chunk_spans(text, chunk_size, overlap)]
