"""Complexity after the fact: post-analysis, the scale, and estimate-vs-actual adjustment."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field
from pydantic.config import JsonDict

from shared_schemas.common import ProviderName, RequestModel, ResponseModel
from shared_schemas.complexity import COMPLEXITY_MODEL, COMPLEXITY_PROVIDER, Hours, Level

Direction = Literal["underestimated", "overestimated", "accurate"]
LevelNumber = float  # levels in adjustment requests may be fractional (e.g. averaged estimates)

_METRICS: JsonDict = {
    "total_lines_changed": 505,
    "lines_added": 420,
    "lines_removed": 85,
    "files_changed": 12,
    "commits": 9,
    "time_to_merge_hours": 30.5,
    "time_spent_hours": None,
    "review_comments": 14,
    "blockers": 0,
}


def _level(
    level: int, name: str, description: str, hours: tuple[float, float], points: int, *signs: str
) -> JsonDict:
    return {
        "level": level,
        "name": name,
        "description": description,
        "hours_min": hours[0],
        "hours_max": hours[1],
        "base_points": points,
        "indicators": list(signs),
    }


_SCALE: tuple[JsonDict, ...] = (
    _level(1, "Trivial", "Quick fix, typo or configuration change", (0.1, 1.0), 1, "Typo fix"),
    _level(2, "Simple", "Small, well-defined change", (1.0, 4.0), 3, "Single component"),
    _level(
        3, "Moderate", "Standard feature or significant bug fix", (4.0, 16.0), 5, "New API endpoint"
    ),
    _level(
        4, "Complex", "Large feature that needs design", (16.0, 40.0), 8, "Cross-service change"
    ),
    _level(5, "Epic", "Major feature or system overhaul", (40.0, 120.0), 13, "Architecture change"),
)


class PostAnalyzeMetrics(ResponseModel):
    """The measured work, echoed with the derived total."""

    model_config = ConfigDict(json_schema_extra={"examples": [_METRICS]})

    total_lines_changed: int = Field(ge=0, description="lines_added + lines_removed.")
    lines_added: int = Field(ge=0, description="Lines added.")
    lines_removed: int = Field(ge=0, description="Lines removed.")
    files_changed: int = Field(ge=0, description="Files changed.")
    commits: int = Field(ge=1, description="Commits.")
    time_to_merge_hours: float | None = Field(ge=0.0, description="Open-to-merge hours.")
    time_spent_hours: float | None = Field(ge=0.0, description="Hours actually worked.")
    review_comments: int = Field(ge=0, description="Review comments.")
    blockers: int = Field(ge=0, description="Blockers met on the way.")


class PostAnalyzeResponse(ResponseModel):
    """Actual level and points, and how good the estimate was."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "actual_complexity": 4,
                    "complexity_name": "Complex",
                    "actual_points": 9,
                    "metrics": _METRICS,
                    "accuracy_score": 75.0,
                    "point_adjustment": 1.15,
                    "adjustment_reason": "Slightly underestimated: 15% bonus",
                    "analysis": "Actual complexity: Complex (4/5) based on 505 lines changed "
                    "across 12 files. Task was more complex than estimated (1 level(s) higher).",
                    "model": COMPLEXITY_MODEL,
                    "provider": COMPLEXITY_PROVIDER,
                }
            ]
        }
    )

    actual_complexity: Level = Field(description="Level on the 1..5 scale.")
    complexity_name: str = Field(description="Name of the level.")
    actual_points: int = Field(ge=0, description="Base points of the level times the adjustment.")
    metrics: PostAnalyzeMetrics = Field(description="The measured work.")
    accuracy_score: float | None = Field(
        ge=0.0,
        le=100.0,
        description="100 - 25 * |pre - actual|; null without pre_complexity_score.",
    )
    point_adjustment: float = Field(ge=0.0, description="Points multiplier (1.0 without estimate).")
    adjustment_reason: str = Field(description="Why that multiplier.")
    analysis: str = Field(description="Explanation in one paragraph.")
    model: str = Field(description="Estimator version.")
    provider: ProviderName = Field(description='Always "heuristic".')


class ScaleLevel(ResponseModel):
    """Definition of one level."""

    model_config = ConfigDict(json_schema_extra={"examples": [_SCALE[2]]})

    level: Level = Field(description="Level number.")
    name: str = Field(description="Level name.")
    description: str = Field(description="What tasks of this level look like.")
    hours_min: float = Field(ge=0.0, description="Typical lower bound in hours.")
    hours_max: float = Field(ge=0.0, description="Typical upper bound in hours.")
    base_points: int = Field(ge=0, description="Story points (Fibonacci-like).")
    indicators: list[str] = Field(max_length=20, description="Typical signs of this level.")


class ScaleResponse(ResponseModel):
    """The five levels, 1 to 5."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"scale": list(_SCALE)}]})

    scale: list[ScaleLevel] = Field(min_length=5, max_length=5, description="Levels 1..5.")


class AdjustmentRequest(RequestModel):
    """Estimated against actual level (and hours, when known)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"pre_level": 3, "actual_level": 4},
                {"pre_level": 2, "actual_level": 2, "estimated_hours": 3.0, "actual_hours": 2.5},
            ]
        }
    )

    pre_level: LevelNumber = Field(ge=1.0, le=5.0, description="Estimated level (1..5).")
    actual_level: LevelNumber = Field(ge=1.0, le=5.0, description="Actual level (1..5).")
    estimated_hours: float | None = Field(
        default=None, gt=0.0, le=100_000.0, description="Estimated hours (> 0)."
    )
    actual_hours: Hours | None = Field(default=None, description="Hours actually worked.")


class AdjustmentResponse(ResponseModel):
    """Points multiplier and estimate accuracy."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "multiplier": 1.15,
                    "bonus_percent": 15,
                    "reason": "Slightly underestimated: 15% bonus",
                    "accuracy_score": 75.0,
                    "direction": "underestimated",
                    "adjustment_factor": 2.8,
                }
            ]
        }
    )

    multiplier: float = Field(ge=0.0, description="Points multiplier from the adjustment table.")
    bonus_percent: int = Field(ge=-100, le=100, description="The multiplier as a percentage bonus.")
    reason: str = Field(description="Table row that applied.")
    accuracy_score: float = Field(ge=0.0, le=100.0, description="100 - 25 * |pre - actual|.")
    direction: Direction = Field(description="Whether the estimate was low, high or right.")
    adjustment_factor: float = Field(
        ge=0.0,
        description="actual_hours / estimated_hours when both given, else the ratio of the "
        "levels' hour midpoints.",
    )
