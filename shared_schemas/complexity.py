"""Complexity: estimate a task before it starts and measure it after it is done."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints
from pydantic.config import JsonDict

from shared_schemas.common import ProviderName, RequestModel, ResponseModel, non_blank

IssueType = Literal[
    "bug", "feature", "enhancement", "refactor", "documentation", "test", "chore", "task"
]
Level = Annotated[int, Field(ge=1, le=5)]
Hours = Annotated[float, Field(ge=0.0, le=100_000.0)]
Label = Annotated[str, StringConstraints(min_length=1, max_length=100)]
TitleText = Annotated[str, non_blank(500)]
FilePath = Annotated[str, StringConstraints(min_length=1, max_length=1000)]

COMPLEXITY_MODEL = "complexity-heuristic-v1"
COMPLEXITY_PROVIDER = "heuristic"
_FACTOR: JsonDict = {
    "name": "issue_type",
    "value": "feature",
    "impact": 0.5,
    "description": "Features add half a level.",
}
_ENGINE: JsonDict = {"model": COMPLEXITY_MODEL, "provider": COMPLEXITY_PROVIDER}


class PreEstimateRequest(RequestModel):
    """A task as known before work starts."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "title": "Add OAuth login with Google",
                    "description": "Users sign in with Google; link existing accounts by email.",
                    "issue_type": "feature",
                    "labels": ["auth", "backend"],
                    "related_files": ["api/auth/oauth.py", "web/src/Login.tsx"],
                }
            ]
        }
    )

    title: TitleText = Field(description="Task title (1..500 chars, not blank).")
    description: str | None = Field(default=None, max_length=50_000, description="Task body.")
    issue_type: IssueType = Field(default="task", description="Kind of task.")
    labels: list[Label] = Field(default_factory=list, max_length=50, description="Tracker labels.")
    related_files: list[FilePath] = Field(
        default_factory=list, max_length=1000, description="Files the task is expected to touch."
    )
    milestone: str | None = Field(default=None, max_length=200, description="Milestone name.")
    project_context: str | None = Field(
        default=None, max_length=5000, description="Notes on the project (stack, constraints)."
    )


class HoursRange(ResponseModel):
    """Hour range of a complexity level."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"min": 4.0, "max": 16.0}]})

    min: float = Field(ge=0.0, description="Lower bound in hours.")
    max: float = Field(ge=0.0, description="Upper bound in hours.")


class Factor(ResponseModel):
    """One explainable contribution to the estimate."""

    model_config = ConfigDict(json_schema_extra={"examples": [_FACTOR]})

    name: str = Field(description="Factor name.")
    value: str | int | float | bool = Field(description="What was observed.")
    impact: float = Field(description="Signed change of the score (levels).")
    description: str = Field(description="Why it matters.")


class PreEstimateResponse(ResponseModel):
    """Estimated level, points and hours, with the factors behind them."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "complexity_score": 4,
                    "complexity_name": "Complex",
                    "estimated_points": 8,
                    "estimated_hours": 28.0,
                    "hours_range": {"min": 16.0, "max": 40.0},
                    "confidence": 0.75,
                    "factors": [_FACTOR],
                    "reasoning": "Estimated as Complex (4/5): feature touching auth.",
                    "calibrated": False,
                    "calibration_samples": 0,
                    **_ENGINE,
                }
            ]
        }
    )

    complexity_score: Level = Field(description="Level on the 1..5 scale.")
    complexity_name: str = Field(description="Name of the level (Trivial..Epic).")
    estimated_points: int = Field(ge=0, description="Story points of the level.")
    estimated_hours: float = Field(ge=0.0, description="Point estimate in hours.")
    hours_range: HoursRange = Field(description="Hour range of the level.")
    confidence: float = Field(ge=0.0, le=1.0, description="Confidence in the estimate.")
    factors: list[Factor] = Field(max_length=50, description="Factors, in the order applied.")
    reasoning: str = Field(description="Explanation in one paragraph.")
    calibrated: bool = Field(
        description="Whether post-analysis history adjusted the estimate (from 5 samples on)."
    )
    calibration_samples: int = Field(
        ge=0,
        description="Post-analyses of this issue_type sent with pre_complexity_score "
        "(the most recent 50).",
    )
    model: str = Field(description="Estimator version.")
    provider: ProviderName = Field(description='Always "heuristic".')


class PostAnalyzeRequest(RequestModel):
    """What a finished task actually took."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "lines_added": 420,
                    "lines_removed": 85,
                    "files_changed": 12,
                    "commits": 9,
                    "time_to_merge_hours": 30.5,
                    "review_comments": 14,
                    "pre_complexity_score": 3,
                    "task_type": "feature",
                    "task_id": "PROJ-123",
                }
            ]
        }
    )

    lines_added: int = Field(default=0, ge=0, le=10_000_000, description="Lines added.")
    lines_removed: int = Field(default=0, ge=0, le=10_000_000, description="Lines removed.")
    files_changed: int = Field(default=0, ge=0, le=1_000_000, description="Files changed.")
    commits: int = Field(default=1, ge=1, le=100_000, description="Commits.")
    time_to_merge_hours: Hours | None = Field(default=None, description="Open-to-merge hours.")
    time_spent_hours: Hours | None = Field(default=None, description="Hours actually worked.")
    review_comments: int = Field(default=0, ge=0, le=100_000, description="Review comments.")
    blockers: int = Field(default=0, ge=0, le=10_000, description="Blockers met on the way.")
    pr_description: str | None = Field(
        default=None, max_length=50_000, description="Pull-request text."
    )
    pre_complexity_score: float | None = Field(
        default=None, ge=1.0, le=5.0, description="Level estimated beforehand (1..5)."
    )
    pre_estimated_hours: Hours | None = Field(default=None, description="Hours estimated before.")
    task_type: IssueType | None = Field(default=None, description="Kind of task.")
    task_id: str | None = Field(
        default=None, min_length=1, max_length=128, description="Tracker id, for calibration."
    )
