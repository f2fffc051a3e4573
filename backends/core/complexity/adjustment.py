"""Point adjustment after a task is done: the reference table plus accuracy and direction."""

from __future__ import annotations

import math

from backends.core.complexity.results import Adjustment, Direction
from backends.core.complexity.scale import hours_midpoint_at

# diff (actual - pre, rounded to whole levels) -> (multiplier, bonus percent, reason)
_TABLE: dict[int, tuple[float, int, str]] = {
    2: (1.25, 25, "Significantly underestimated: 25% bonus"),
    1: (1.15, 15, "Slightly underestimated: 15% bonus"),
    0: (1.10, 10, "Perfect estimate accuracy: 10% bonus"),
    -1: (1.00, 0, "Slightly overestimated: no adjustment"),
    -2: (0.90, -10, "Significantly overestimated: 10% penalty"),
}


def level_difference(pre_level: float, actual_level: float) -> int:
    """Whole-level difference, rounding half away from zero.

    The reference looks up the raw difference, so any fractional one (even +0.5, an
    underestimate) fell through to the 10% penalty; rounding first keeps integer
    differences exactly as the reference and puts fractional ones in the nearest row.
    """
    diff = actual_level - pre_level
    whole = math.floor(abs(diff) + 0.5)
    return int(math.copysign(whole, diff)) if whole else 0


def table_row(pre_level: float, actual_level: float) -> tuple[float, int, str]:
    diff = max(-2, min(2, level_difference(pre_level, actual_level)))
    return _TABLE[diff]


def accuracy_score(pre_level: float, actual_level: float) -> float:
    """100 - 25 * |pre - actual|, kept within 0..100."""
    return round(max(0.0, min(100.0, 100.0 - 25.0 * abs(pre_level - actual_level))), 2)


def direction(pre_level: float, actual_level: float) -> Direction:
    if actual_level > pre_level:
        return "underestimated"
    if actual_level < pre_level:
        return "overestimated"
    return "accurate"


def calculate_adjustment(
    pre_level: float,
    actual_level: float,
    estimated_hours: float | None = None,
    actual_hours: float | None = None,
) -> Adjustment:
    """Table row, accuracy and effort ratio for one finished task.

    ``adjustment_factor`` is actual/estimated hours when both are known; otherwise the
    ratio of the scale's hour midpoints at the two levels (interpolated for fractions).
    """
    multiplier, bonus, reason = table_row(pre_level, actual_level)
    if estimated_hours is not None and actual_hours is not None and estimated_hours > 0:
        factor = actual_hours / estimated_hours
    else:
        factor = hours_midpoint_at(actual_level) / hours_midpoint_at(pre_level)
    return Adjustment(
        multiplier=multiplier,
        bonus_percent=bonus,
        reason=reason,
        accuracy_score=accuracy_score(pre_level, actual_level),
        direction=direction(pre_level, actual_level),
        adjustment_factor=round(factor, 4),
    )
