"""ComplexityService: the entry point both backends call (synchronous, thread-safe)."""

from __future__ import annotations

from collections.abc import Sequence

from backends.core.complexity import adjustment, estimator, post_analysis
from backends.core.complexity.calibration import (
    CalibrationHistory,
    CalibrationSample,
    InMemoryCalibrationHistory,
    calibrate,
    calibration_factor,
)
from backends.core.complexity.results import (
    MODEL,
    PROVIDER,
    Adjustment,
    Factor,
    HoursRange,
    PostAnalysis,
    PreEstimate,
    TaskInput,
    WorkMetrics,
)
from backends.core.complexity.scale import (
    MAX_LEVEL,
    MIN_LEVEL,
    SCALE,
    ComplexityLevel,
    level_info,
    round_half_up,
)
from backends.core.health import ComponentHealth


class ComplexityService:
    """Rule-based estimation; ``history`` feeds calibration and receives post-analyses."""

    def __init__(self, history: CalibrationHistory | None = None) -> None:
        self._history: CalibrationHistory = history or InMemoryCalibrationHistory()

    def pre_estimate(
        self,
        title: str,
        description: str | None = None,
        issue_type: str = "task",
        labels: Sequence[str] = (),
        related_files: Sequence[str] = (),
        milestone: str | None = None,
        project_context: str | None = None,
    ) -> PreEstimate:
        task = TaskInput(
            title=title,
            description=description,
            issue_type=issue_type,
            labels=tuple(labels),
            related_files=tuple(related_files),
            milestone=milestone,
            project_context=project_context,
        )
        raw = estimator.estimate(task)
        kind = issue_type.strip().lower() or "task"
        calibration = calibrate(kind, self._history.samples())
        factors = list(raw.factors)
        score = raw.score
        if calibration.applied:
            shifted = max(float(MIN_LEVEL), min(float(MAX_LEVEL), score + calibration.shift))
            factors.append(calibration_factor(kind, calibration, shifted - score))
            score = shifted
        level = round_half_up(score)
        info = level_info(level)
        return PreEstimate(
            complexity_score=info.level,
            complexity_name=info.name,
            estimated_points=info.base_points,
            estimated_hours=info.hours_midpoint,
            hours_range=HoursRange(min=info.hours_min, max=info.hours_max),
            confidence=estimator.confidence(raw, calibrated=calibration.applied),
            factors=tuple(factors),
            reasoning=_reasoning(info, score, factors),
            calibrated=calibration.applied,
            calibration_samples=calibration.samples,
        )

    def post_analyze(
        self,
        metrics: WorkMetrics,
        pre_complexity_score: float | None = None,
        task_type: str | None = None,
    ) -> PostAnalysis:
        """Score the finished task; with a pre-estimate and a type, remember the pair."""
        result = post_analysis.analyze(metrics, pre_complexity_score)
        if pre_complexity_score is not None and task_type and task_type.strip():
            self._history.record(
                CalibrationSample(
                    task_type=task_type.strip().lower(),
                    pre_score=float(pre_complexity_score),
                    actual_score=float(result.actual_complexity),
                )
            )
        return result

    def scale(self) -> tuple[ComplexityLevel, ...]:
        return SCALE

    def calculate_adjustment(
        self,
        pre_level: float,
        actual_level: float,
        estimated_hours: float | None = None,
        actual_hours: float | None = None,
    ) -> Adjustment:
        return adjustment.calculate_adjustment(
            pre_level, actual_level, estimated_hours, actual_hours
        )

    def health(self) -> ComponentHealth:
        """Always available (no model); degraded only if the history cannot be read."""
        try:
            count = len(self._history.samples())
        except Exception as exc:  # a health probe reports failures, it never raises them
            return ComponentHealth(
                status="degraded",
                component="complexity",
                provider=PROVIDER,
                model=MODEL,
                available=True,
                detail=f"calibration history unavailable: {exc}",
            )
        return ComponentHealth(
            status="ok",
            component="complexity",
            provider=PROVIDER,
            model=MODEL,
            available=True,
            detail=f"{count} calibration samples",
        )


def _reasoning(info: ComplexityLevel, score: float, factors: Sequence[Factor]) -> str:
    reasons = [f.description for f in factors if f.impact != 0.0]
    body = ". ".join(reasons) if reasons else "Default moderate complexity estimate"
    return (
        f"Estimated as {info.name} ({info.level}/5): {body}. "
        f"Started at 3; the factors sum to {score:.2f}, which rounds to {info.level}."
    )
