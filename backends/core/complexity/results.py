"""Inputs and results of the complexity engine (plain dataclasses, framework-free)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

MODEL = "complexity-heuristic-v1"
PROVIDER = "heuristic"

FactorValue = str | int | float | bool
Direction = Literal["underestimated", "overestimated", "accurate"]


@dataclass(frozen=True, slots=True)
class Factor:
    """One explainable contribution to an estimate; ``impact`` is its signed score change."""

    name: str
    value: FactorValue
    impact: float
    description: str


@dataclass(frozen=True, slots=True)
class TaskInput:
    title: str
    description: str | None = None
    issue_type: str = "task"
    labels: Sequence[str] = ()
    related_files: Sequence[str] = ()
    milestone: str | None = None
    project_context: str | None = None


@dataclass(frozen=True, slots=True)
class HoursRange:
    min: float
    max: float


@dataclass(frozen=True, slots=True)
class PreEstimate:
    complexity_score: int
    complexity_name: str
    estimated_points: int
    estimated_hours: float
    hours_range: HoursRange
    confidence: float
    factors: tuple[Factor, ...]
    reasoning: str
    calibrated: bool
    calibration_samples: int
    model: str = MODEL
    provider: str = PROVIDER


@dataclass(frozen=True, slots=True)
class WorkMetrics:
    """What actually happened on a finished task (post-analysis input)."""

    lines_added: int = 0
    lines_removed: int = 0
    files_changed: int = 0
    commits: int = 1
    time_to_merge_hours: float | None = None
    time_spent_hours: float | None = None
    review_comments: int = 0
    blockers: int = 0
    pr_description: str | None = None


@dataclass(frozen=True, slots=True)
class Adjustment:
    multiplier: float
    bonus_percent: int
    reason: str
    accuracy_score: float
    direction: Direction
    adjustment_factor: float


@dataclass(frozen=True, slots=True)
class PostAnalysis:
    actual_complexity: int
    complexity_name: str
    actual_points: int
    metrics: dict[str, int | float | None]
    accuracy_score: float | None
    point_adjustment: float
    adjustment_reason: str
    analysis: str
    model: str = MODEL
    provider: str = PROVIDER
