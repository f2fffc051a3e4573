"""Complexity: pre-estimate, post-analyze, scale, calculate-adjustment, health."""

from __future__ import annotations

from backends.core.api.api_request import ApiRequest, Handler
from backends.core.api.handlers.convert import component_health
from backends.core.complexity.results import Factor, WorkMetrics
from backends.core.complexity.scale import ComplexityLevel
from backends.core.engine import Engine
from shared_schemas import complexity as cx
from shared_schemas import complexity_outcome as co
from shared_schemas.health import ComponentHealth


def _factor(factor: Factor) -> cx.Factor:
    return cx.Factor(
        name=factor.name, value=factor.value, impact=factor.impact, description=factor.description
    )


def pre_estimate(engine: Engine, api_request: ApiRequest) -> cx.PreEstimateResponse:
    body = api_request.body_as(cx.PreEstimateRequest)
    result = engine.complexity.pre_estimate(
        body.title,
        description=body.description,
        issue_type=body.issue_type,
        labels=body.labels,
        related_files=body.related_files,
        milestone=body.milestone,
        project_context=body.project_context,
    )
    return cx.PreEstimateResponse(
        complexity_score=result.complexity_score,
        complexity_name=result.complexity_name,
        estimated_points=result.estimated_points,
        estimated_hours=result.estimated_hours,
        hours_range=cx.HoursRange(min=result.hours_range.min, max=result.hours_range.max),
        confidence=result.confidence,
        factors=[_factor(f) for f in result.factors],
        reasoning=result.reasoning,
        calibrated=result.calibrated,
        calibration_samples=result.calibration_samples,
        model=result.model,
        provider=result.provider,
    )


def post_analyze(engine: Engine, api_request: ApiRequest) -> co.PostAnalyzeResponse:
    # pre_estimated_hours and task_id are accepted by the contract but the engine's
    # calibration keys on (task_type, pre score, actual score) only.
    body = api_request.body_as(cx.PostAnalyzeRequest)
    metrics = WorkMetrics(
        lines_added=body.lines_added,
        lines_removed=body.lines_removed,
        files_changed=body.files_changed,
        commits=body.commits,
        time_to_merge_hours=body.time_to_merge_hours,
        time_spent_hours=body.time_spent_hours,
        review_comments=body.review_comments,
        blockers=body.blockers,
        pr_description=body.pr_description,
    )
    result = engine.complexity.post_analyze(
        metrics, pre_complexity_score=body.pre_complexity_score, task_type=body.task_type
    )
    return co.PostAnalyzeResponse(
        actual_complexity=result.actual_complexity,
        complexity_name=result.complexity_name,
        actual_points=result.actual_points,
        # The engine keys the echoed metrics exactly like the contract (extra keys would fail).
        metrics=co.PostAnalyzeMetrics.model_validate(result.metrics),
        accuracy_score=result.accuracy_score,
        point_adjustment=result.point_adjustment,
        adjustment_reason=result.adjustment_reason,
        analysis=result.analysis,
        model=result.model,
        provider=result.provider,
    )


def _level(level: ComplexityLevel) -> co.ScaleLevel:
    return co.ScaleLevel(
        level=level.level,
        name=level.name,
        description=level.description,
        hours_min=level.hours_min,
        hours_max=level.hours_max,
        base_points=level.base_points,
        indicators=list(level.indicators),
    )


def scale(engine: Engine, api_request: ApiRequest) -> co.ScaleResponse:
    return co.ScaleResponse(scale=[_level(level) for level in engine.complexity.scale()])


def calculate_adjustment(engine: Engine, api_request: ApiRequest) -> co.AdjustmentResponse:
    body = api_request.body_as(co.AdjustmentRequest)
    result = engine.complexity.calculate_adjustment(
        body.pre_level,
        body.actual_level,
        estimated_hours=body.estimated_hours,
        actual_hours=body.actual_hours,
    )
    return co.AdjustmentResponse(
        multiplier=result.multiplier,
        bonus_percent=result.bonus_percent,
        reason=result.reason,
        accuracy_score=result.accuracy_score,
        direction=result.direction,
        adjustment_factor=result.adjustment_factor,
    )


def health(engine: Engine, api_request: ApiRequest) -> ComponentHealth:
    return component_health(engine.complexity.health())


HANDLERS: dict[str, Handler] = {
    "complexity_pre_estimate": pre_estimate,
    "complexity_post_analyze": post_analyze,
    "complexity_scale": scale,
    "complexity_calculate_adjustment": calculate_adjustment,
    "complexity_health": health,
}
