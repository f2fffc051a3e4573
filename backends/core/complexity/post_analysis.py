"""Actual complexity of a finished task from its change size, effort and friction."""

from __future__ import annotations

from dataclasses import replace

from backends.core.complexity.adjustment import accuracy_score as score_accuracy
from backends.core.complexity.adjustment import table_row
from backends.core.complexity.results import PostAnalysis, WorkMetrics
from backends.core.complexity.scale import SCALE, clamp_level, level_info, round_half_up


def size_level(metrics: WorkMetrics) -> int:
    """The reference's rules: lines changed, then floors for files, merge time, review."""
    total = metrics.lines_added + metrics.lines_removed
    level = 1 + sum(total >= bound for bound in (50, 200, 500, 1000))
    if metrics.files_changed > 20:
        level = max(level, 4)
    elif metrics.files_changed > 10:
        level = max(level, 3)
    if metrics.time_to_merge_hours is not None and metrics.time_to_merge_hours > 40:
        level = max(level, 4)
    if metrics.review_comments > 20:
        level = max(level, 4)
    return clamp_level(level)


def effort_level(hours: float) -> int:
    """The scale level whose hour range holds the time actually spent (upper bound inclusive)."""
    for entry in SCALE:
        if hours <= entry.hours_max:
            return entry.level
    return SCALE[-1].level


def actual_level(metrics: WorkMetrics) -> int:
    """Size level, averaged with the effort level when time spent is known, then blockers."""
    level = size_level(metrics)
    if metrics.time_spent_hours is not None:
        # Time spent is direct evidence of effort; lines alone over-rate generated code
        # and under-rate hard one-line fixes, so both count equally.
        level = round_half_up((level + effort_level(metrics.time_spent_hours)) / 2)
    if metrics.blockers >= 3:
        level += 1
    elif metrics.blockers >= 1:
        level = max(level, 2)
    return clamp_level(level)


def analyze(metrics: WorkMetrics, pre_score: float | None = None) -> PostAnalysis:
    level = actual_level(metrics)
    info = level_info(level)
    total = metrics.lines_added + metrics.lines_removed
    parts = [
        f"Actual complexity: {info.name} ({level}/5) based on {total} lines changed "
        f"across {metrics.files_changed} files."
    ]
    if metrics.time_spent_hours is not None:
        spent = metrics.time_spent_hours
        parts.append(
            f"{spent:g} hours spent (a {level_info(effort_level(spent)).name} effort) "
            f"weighed equally with the change size ({level_info(size_level(metrics)).name})."
        )
    if metrics.blockers:
        before = actual_level(replace(metrics, blockers=0))
        effect = f"raised the level from {before}" if before != level else "left the level as is"
        parts.append(f"{metrics.blockers} blocker(s) {effect}.")

    if pre_score is None:
        multiplier, reason, accuracy = 1.0, "No pre-estimate provided", None
    else:
        multiplier, _, reason = table_row(pre_score, level)
        accuracy = score_accuracy(pre_score, level)
        diff = level - pre_score
        if diff > 0:
            parts.append(f"Task was more complex than estimated ({diff:g} level(s) higher).")
        elif diff < 0:
            parts.append(f"Task was simpler than estimated ({-diff:g} level(s) lower).")
        else:
            parts.append("Estimation was accurate.")

    return PostAnalysis(
        actual_complexity=level,
        complexity_name=info.name,
        actual_points=round_half_up(info.base_points * multiplier),
        metrics={
            "total_lines_changed": total,
            "lines_added": metrics.lines_added,
            "lines_removed": metrics.lines_removed,
            "files_changed": metrics.files_changed,
            "commits": metrics.commits,
            "time_to_merge_hours": metrics.time_to_merge_hours,
            "time_spent_hours": metrics.time_spent_hours,
            "review_comments": metrics.review_comments,
            "blockers": metrics.blockers,
        },
        accuracy_score=accuracy,
        point_adjustment=multiplier,
        adjustment_reason=reason,
        analysis=" ".join(parts),
    )
