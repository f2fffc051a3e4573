"""Deterministic pre-estimate: the reference's keyword rules plus whole-text evidence.

Every step moves a running score and records a Factor whose ``impact`` is the exact change
it made, so the impacts always add up to ``score - 3``: the estimate explains itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from backends.core.complexity import signals
from backends.core.complexity.results import Factor, FactorValue, TaskInput
from backends.core.complexity.scale import MAX_LEVEL, MIN_LEVEL

BASE_SCORE = 3.0
# Whole-text evidence may move the keyword-based score by at most this much either way.
EVIDENCE_MIN, EVIDENCE_MAX = -1.0, 1.5


@dataclass(slots=True)
class RawEstimate:
    """Continuous score before calibration and rounding, with its factors and evidence."""

    score: float = BASE_SCORE
    factors: list[Factor] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    keyword_hit: bool = False

    def move(self, name: str, value: FactorValue, new_score: float, description: str) -> None:
        """Set the score (clamped to the scale) and record what moved it."""
        bounded = max(float(MIN_LEVEL), min(float(MAX_LEVEL), new_score))
        impact = round(bounded - self.score, 4)
        self.factors.append(Factor(name, value, impact, description))
        self.score = bounded


def estimate(task: TaskInput) -> RawEstimate:
    """Run every rule over the task in a fixed order; same input, same output."""
    raw = RawEstimate()
    text = f"{task.title} {task.description or ''}".lower()
    _keyword_rules(raw, text)
    _issue_type(raw, task.issue_type)
    _evidence(raw, task, text)
    _floors(raw, task)
    return raw


def _keyword_rules(raw: RawEstimate, text: str) -> None:
    rules = (
        ("trivial_keyword", signals.TRIVIAL_KEYWORDS, lambda s: 1.0, "set the level to 1"),
        ("simple_keyword", signals.SIMPLE_KEYWORDS, lambda s: min(s, 2.0), "cap the level at 2"),
        ("complex_keyword", signals.COMPLEX_KEYWORDS, lambda s: max(s, 4.0), "raise it to 4"),
        ("epic_keyword", signals.EPIC_KEYWORDS, lambda s: 5.0, "set the level to 5"),
    )
    for name, keywords, rule, effect in rules:
        hits = signals.matched_keywords(text, keywords)
        if hits:
            raw.keyword_hit = True
            quoted = ", ".join(f"'{hit}'" for hit in hits)
            raw.move(name, ", ".join(hits), rule(raw.score), f"Keyword(s) {quoted} {effect}")


def _issue_type(raw: RawEstimate, issue_type: str) -> None:
    kind = issue_type.strip().lower() or "task"
    adjustment = signals.ISSUE_TYPE_ADJUSTMENT.get(kind, 0.0)
    if kind != "task":
        raw.evidence.append("issue_type")
    raw.move("issue_type", kind, raw.score + adjustment, f"Issue type '{kind}': {adjustment:+g}")


def _evidence(raw: RawEstimate, task: TaskInput, text: str) -> None:
    """Signals from the whole task: detail, structure, areas, files, labels, context."""
    start = raw.score
    description = task.description or ""

    words = signals.word_count(description)
    if words:
        detail = 0.5 if words >= 300 else 0.25 if words >= 100 else 0.0
        if words >= 25:
            raw.evidence.append("description")
        raw.move("description_detail", words, raw.score + detail, f"Description: {words} words")

    structure = signals.structure_of(description)
    steps = structure.steps
    step_impact = 0.75 if steps > 10 else 0.5 if steps > 5 else 0.25 if steps >= 3 else 0.0
    if steps:
        raw.evidence.append("structure")
        raw.move("steps", steps, raw.score + step_impact, f"{steps} listed step(s) or item(s)")

    criteria = structure.criteria
    if criteria or structure.has_criteria_section:
        raw.evidence.append("acceptance_criteria")
        impact = 0.5 if criteria >= 6 else 0.25 if criteria >= 3 else 0.0
        raw.move("acceptance_criteria", criteria, raw.score + impact, f"{criteria} criteria")

    areas = signals.technical_areas(text, task.related_files)
    if areas:
        raw.evidence.append("technical_areas")
        # one or two areas are normal for any task; each further one adds coordination
        spread = min(0.75, 0.25 * max(0, len(areas) - 2))
        raw.move(
            "technical_areas",
            ", ".join(areas),
            raw.score + spread,
            f"{len(areas)} technical area(s): {', '.join(areas)}",
        )

    if len(task.related_files) == 1:
        raw.move("single_file", 1, raw.score - 0.25, "Only one related file")

    labels = signals.label_impacts(task.labels)
    if labels:
        raw.evidence.append("labels")
        total = max(-1.0, min(1.0, sum(labels.values())))
        shown = ", ".join(f"{name} {impact:+g}" for name, impact in labels.items())
        raw.move("labels", ", ".join(labels), raw.score + total, f"Labels: {shown}")

    risks = signals.context_risks(task.project_context)
    if task.project_context and task.project_context.strip():
        raw.evidence.append("project_context")
    if risks:
        raw.move(
            "project_context",
            ", ".join(risks),
            raw.score + min(0.5, 0.25 * len(risks)),
            f"Project context mentions {', '.join(risks)}",
        )

    moved = raw.score - start
    if moved > EVIDENCE_MAX or moved < EVIDENCE_MIN:
        bounded = max(EVIDENCE_MIN, min(EVIDENCE_MAX, moved))
        raw.move(
            "evidence_cap",
            round(moved, 4),
            start + bounded,
            f"Text evidence limited to {EVIDENCE_MIN:+g}..{EVIDENCE_MAX:+g} levels",
        )


def _floors(raw: RawEstimate, task: TaskInput) -> None:
    """The reference's size floors: many files or a long description mean real work."""
    files = len(task.related_files)
    if files:
        raw.evidence.append("related_files")
        floor = 4.0 if files > 10 else 3.0 if files > 5 else raw.score
        raw.move(
            "related_files_count",
            files,
            max(raw.score, floor),
            f"{files} related file(s) identified",
        )
    if task.description:
        length = len(task.description)
        floor = 4.0 if length > 1000 else 3.0 if length > 500 else raw.score
        raw.move(
            "description_length",
            length,
            max(raw.score, floor),
            f"Description length: {length} characters",
        )


def confidence(raw: RawEstimate, *, calibrated: bool) -> float:
    """More independent evidence -> more confidence; conflicting strong signals -> less."""
    value = 0.5
    if raw.keyword_hit:
        value += 0.1
    value += min(0.3, 0.05 * len(set(raw.evidence)))
    if calibrated:
        value += 0.05
    signals_only = [f for f in raw.factors if f.name != "evidence_cap"]
    if any(f.impact <= -0.5 for f in signals_only) and any(f.impact >= 0.5 for f in signals_only):
        value -= 0.1  # strong signals pulling both ways: the text is ambiguous
    return round(max(0.3, min(0.95, value)), 2)
