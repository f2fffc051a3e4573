"""The five-level complexity scale (same levels, hours and points as the reference)."""

from __future__ import annotations

import math
from dataclasses import dataclass

MIN_LEVEL = 1
MAX_LEVEL = 5


@dataclass(frozen=True, slots=True)
class ComplexityLevel:
    level: int
    name: str
    description: str
    hours_min: float
    hours_max: float
    base_points: int
    indicators: tuple[str, ...]

    @property
    def hours_midpoint(self) -> float:
        """Point estimate of the effort: the middle of the level's hour range."""
        return round((self.hours_min + self.hours_max) / 2, 2)


SCALE: tuple[ComplexityLevel, ...] = (
    ComplexityLevel(
        1,
        "Trivial",
        "Quick fix, typo or configuration change",
        0.1,
        1.0,
        1,
        ("Single file change", "Configuration update", "Typo fix", "Documentation update"),
    ),
    ComplexityLevel(
        2,
        "Simple",
        "Small, well-defined change",
        1.0,
        4.0,
        3,
        ("Single component", "Simple bug fix", "Minor refactor", "Add tests"),
    ),
    ComplexityLevel(
        3,
        "Moderate",
        "Standard feature or significant bug fix",
        4.0,
        16.0,
        5,
        ("Multiple files", "New API endpoint", "UI component with state", "Database migration"),
    ),
    ComplexityLevel(
        4,
        "Complex",
        "Large feature that needs design",
        16.0,
        40.0,
        8,
        (
            "Cross-service changes",
            "New integration",
            "Performance optimisation",
            "Security implementation",
        ),
    ),
    ComplexityLevel(
        5,
        "Epic",
        "Major feature or system overhaul",
        40.0,
        120.0,
        13,
        ("Architecture change", "New service", "Major refactor", "Platform migration"),
    ),
)


def level_info(level: int) -> ComplexityLevel:
    """The scale entry for an integer level (clamped into 1..5)."""
    return SCALE[clamp_level(level) - 1]


def clamp_level(level: int) -> int:
    return max(MIN_LEVEL, min(MAX_LEVEL, level))


def round_half_up(value: float) -> int:
    """JavaScript ``Math.round`` semantics (2.5 -> 3), as the reference rounds scores."""
    # floor(x + 0.5) is Math.round; Python's round() would give banker's rounding (2.5 -> 2)
    return math.floor(value + 0.5)


def hours_midpoint_at(level: float) -> float:
    """Effort midpoint for a possibly fractional level, interpolated between neighbours."""
    bounded = max(float(MIN_LEVEL), min(float(MAX_LEVEL), level))
    lower = int(bounded)
    if lower in (bounded, MAX_LEVEL):
        return level_info(lower).hours_midpoint
    low, high = level_info(lower).hours_midpoint, level_info(lower + 1).hours_midpoint
    return low + (high - low) * (bounded - lower)
