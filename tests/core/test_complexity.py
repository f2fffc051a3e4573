"""Complexity engine: reference examples, the new evidence rules, adjustment, calibration."""

from __future__ import annotations

import math

import pytest

from backends.core.complexity import (
    CalibrationSample,
    ComplexityService,
    InMemoryCalibrationHistory,
)
from backends.core.complexity.calibration import MIN_SAMPLES, calibrate
from backends.core.complexity.results import WorkMetrics

DETAILED = """Users need to download their monthly reports as CSV files from the dashboard.

Steps:
1. Add a database query that aggregates report rows per month
2. Expose a new REST endpoint GET /reports/{id}/export
3. Add an export button to the reports dashboard
4. Stream large files instead of building them in memory

Acceptance criteria:
- [ ] Export matches the on-screen report totals
- [ ] Files over 10k rows download without timeouts
- [ ] Only users with the reports permission can export
"""


@pytest.fixture
def service() -> ComplexityService:
    return ComplexityService(InMemoryCalibrationHistory())


# --- scale -----------------------------------------------------------------------------


def test_scale_matches_reference(service: ComplexityService) -> None:
    scale = service.scale()
    assert [level.level for level in scale] == [1, 2, 3, 4, 5]
    assert [level.name for level in scale] == ["Trivial", "Simple", "Moderate", "Complex", "Epic"]
    assert [level.base_points for level in scale] == [1, 3, 5, 8, 13]
    assert [(lv.hours_min, lv.hours_max) for lv in scale] == [
        (0.1, 1),
        (1, 4),
        (4, 16),
        (16, 40),
        (40, 120),
    ]
    assert [lv.hours_midpoint for lv in scale] == [0.55, 2.5, 10, 28, 80]
    assert all(len(level.indicators) == 4 for level in scale)


# --- pre-estimate: reference examples ----------------------------------------------------


def test_bare_title_default_task_is_moderate(service: ComplexityService) -> None:
    result = service.pre_estimate("Add user profile page")
    assert result.complexity_score == 3
    assert result.complexity_name == "Moderate"
    assert result.estimated_points == 5
    assert result.estimated_hours == 10
    assert (result.hours_range.min, result.hours_range.max) == (4, 16)
    assert result.reasoning.startswith("Estimated as Moderate (3/5): ")
    assert "Default moderate complexity estimate" in result.reasoning
    assert (result.model, result.provider) == ("complexity-heuristic-v1", "heuristic")
    assert result.calibrated is False


def test_typo_is_trivial(service: ComplexityService) -> None:
    result = service.pre_estimate("fix typo in readme")
    assert result.complexity_score == 1
    factor = next(f for f in result.factors if f.name == "trivial_keyword")
    assert factor.impact == -2.0
    assert "typo" in str(factor.value)


def test_redesign_is_epic(service: ComplexityService) -> None:
    assert service.pre_estimate("redesign platform architecture").complexity_score == 5


def test_bug_rounds_half_up_and_feature_rises(service: ComplexityService) -> None:
    # 3 - 0.5 = 2.5 rounds up like JS Math.round; 3 + 0.5 = 3.5 -> 4
    assert service.pre_estimate("Crash on startup", issue_type="bug").complexity_score == 3
    assert service.pre_estimate("Crash on startup", issue_type="feature").complexity_score == 4
    assert service.pre_estimate("Crash on startup", issue_type="unknown").complexity_score == 3


def test_related_files_and_description_floors(service: ComplexityService) -> None:
    files = [f"src/module_{i}.py" for i in range(11)]
    assert service.pre_estimate("quick tweak", related_files=files).complexity_score == 4
    assert service.pre_estimate("quick tweak", related_files=files[:6]).complexity_score == 3
    assert service.pre_estimate("quick tweak", description="x" * 1001).complexity_score == 4


# --- pre-estimate: whole-text evidence ---------------------------------------------------


def test_detailed_description_scores_higher_than_one_liner(service: ComplexityService) -> None:
    short = service.pre_estimate("Add CSV export for reports")
    detailed = service.pre_estimate("Add CSV export for reports", description=DETAILED)
    assert detailed.complexity_score > short.complexity_score
    assert detailed.confidence > short.confidence
    names = {f.name for f in detailed.factors}
    assert {"steps", "acceptance_criteria", "technical_areas"} <= names
    criteria = next(f for f in detailed.factors if f.name == "acceptance_criteria")
    assert criteria.value == 3


def test_factor_impacts_explain_the_score(service: ComplexityService) -> None:
    result = service.pre_estimate(
        "Add CSV export for reports",
        description=DETAILED,
        labels=["Security", "type: breaking-change", "good first issue"],
        related_files=["api/reports.py", "web/components/Export.tsx"],
    )
    total = 3 + sum(f.impact for f in result.factors)
    assert math.floor(total + 0.5) == result.complexity_score
    for factor in result.factors:
        assert factor.name and factor.description
        assert isinstance(factor.value, str | int | float | bool)
    labels = next(f for f in result.factors if f.name == "labels")
    assert labels.impact == pytest.approx(0.5)  # security +0.5, breaking +0.5, first issue -0.5


def test_labels_move_the_estimate(service: ComplexityService) -> None:
    plain = service.pre_estimate("Change session handling")
    risky = service.pre_estimate("Change session handling", labels=["breaking-change", "epic"])
    easy = service.pre_estimate("Change session handling", labels=["good-first-issue", "easy"])
    assert easy.complexity_score < plain.complexity_score < risky.complexity_score


def test_deterministic(service: ComplexityService) -> None:
    args = {"description": DETAILED, "labels": ["security"], "related_files": ["a.sql"]}
    first = service.pre_estimate("Add CSV export", **args)  # type: ignore[arg-type]
    second = ComplexityService().pre_estimate("Add CSV export", **args)  # type: ignore[arg-type]
    assert first == second


def test_confidence_is_capped(service: ComplexityService) -> None:
    result = service.pre_estimate(
        "Refactor billing integration",
        description=DETAILED * 3,
        issue_type="refactor",
        labels=["performance"],
        related_files=[f"billing/f{i}.py" for i in range(12)],
        project_context="legacy monolith with compliance rules",
    )
    assert 0 < result.confidence <= 0.95


# --- post-analysis -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "expected"),
    [(0, 1), (49, 1), (50, 2), (199, 2), (200, 3), (499, 3), (500, 4), (999, 4), (1000, 5)],
)
def test_post_analyze_line_thresholds(
    service: ComplexityService, lines: int, expected: int
) -> None:
    assert service.post_analyze(WorkMetrics(lines_added=lines)).actual_complexity == expected


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        (WorkMetrics(files_changed=10), 1),
        (WorkMetrics(files_changed=11), 3),
        (WorkMetrics(files_changed=21), 4),
        (WorkMetrics(time_to_merge_hours=40), 1),
        (WorkMetrics(time_to_merge_hours=40.5), 4),
        (WorkMetrics(review_comments=21), 4),
        (WorkMetrics(lines_added=10, time_spent_hours=30), 3),  # (1 + 4) / 2 = 2.5 -> 3
        (WorkMetrics(lines_added=2000, time_spent_hours=0.5), 3),
        (WorkMetrics(blockers=1), 2),
        (WorkMetrics(lines_added=300, blockers=3), 4),
    ],
)
def test_post_analyze_floors_and_extra_signals(
    service: ComplexityService, metrics: WorkMetrics, expected: int
) -> None:
    assert service.post_analyze(metrics).actual_complexity == expected


def test_post_analyze_without_and_with_pre_estimate(service: ComplexityService) -> None:
    alone = service.post_analyze(WorkMetrics(lines_added=300))
    assert alone.accuracy_score is None
    assert alone.point_adjustment == 1.0
    assert alone.adjustment_reason == "No pre-estimate provided"
    assert alone.actual_points == 5

    exact = service.post_analyze(WorkMetrics(lines_added=300), pre_complexity_score=3)
    assert exact.accuracy_score == 100
    assert exact.point_adjustment == 1.10
    assert exact.actual_points == 6  # round(5 * 1.1)
    assert "Estimation was accurate." in exact.analysis

    under = service.post_analyze(WorkMetrics(lines_added=300), pre_complexity_score=1)
    assert under.accuracy_score == 50
    assert under.point_adjustment == 1.25
    assert "2 level(s) higher" in under.analysis
    assert under.metrics["total_lines_changed"] == 300


# --- adjustment --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pre", "actual", "multiplier", "bonus", "direction"),
    [
        (1, 3, 1.25, 25, "underestimated"),
        (1, 5, 1.25, 25, "underestimated"),
        (2, 3, 1.15, 15, "underestimated"),
        (3, 3, 1.10, 10, "accurate"),
        (3, 2, 1.00, 0, "overestimated"),
        (4, 2, 0.90, -10, "overestimated"),
        (5, 1, 0.90, -10, "overestimated"),
        # fractional differences go to the nearest row (the reference penalised them all)
        (3, 3.5, 1.15, 15, "underestimated"),
        (3, 3.4, 1.10, 10, "underestimated"),
        (3, 2.5, 1.00, 0, "overestimated"),
        (2, 3.6, 1.25, 25, "underestimated"),
        (4, 2.2, 0.90, -10, "overestimated"),
    ],
)
def test_adjustment_table(
    service: ComplexityService,
    pre: float,
    actual: float,
    multiplier: float,
    bonus: int,
    direction: str,
) -> None:
    result = service.calculate_adjustment(pre, actual)
    assert (result.multiplier, result.bonus_percent, result.direction) == (
        multiplier,
        bonus,
        direction,
    )
    assert result.reason


@pytest.mark.parametrize(
    ("pre", "actual", "accuracy"),
    [(3, 3, 100), (3, 4, 75), (1, 3, 50), (5, 2, 25), (1, 5, 0), (3, 3.5, 87.5)],
)
def test_accuracy_score(
    service: ComplexityService, pre: float, actual: float, accuracy: float
) -> None:
    assert service.calculate_adjustment(pre, actual).accuracy_score == accuracy


def test_adjustment_factor(service: ComplexityService) -> None:
    assert service.calculate_adjustment(3, 3, 8, 12).adjustment_factor == 1.5
    assert service.calculate_adjustment(3, 4).adjustment_factor == 2.8  # 28 h / 10 h midpoints
    assert service.calculate_adjustment(3, 3).adjustment_factor == 1.0


# --- calibration -------------------------------------------------------------------------


def test_calibration_shifts_only_after_enough_samples() -> None:
    service = ComplexityService(InMemoryCalibrationHistory())
    title = "Add CSV export for reports"
    baseline = service.pre_estimate(title, issue_type="feature")
    assert baseline.complexity_score == 4

    big_change = WorkMetrics(lines_added=1500, files_changed=25)  # actual level 5
    for recorded in range(1, MIN_SAMPLES + 1):
        estimate = service.pre_estimate(title, issue_type="feature")
        assert estimate.calibrated is False
        assert estimate.calibration_samples == recorded - 1
        assert estimate.complexity_score == 4
        service.post_analyze(big_change, pre_complexity_score=3, task_type="feature")

    calibrated = service.pre_estimate(title, issue_type="feature")
    assert calibrated.calibrated is True
    assert calibrated.calibration_samples == MIN_SAMPLES
    assert calibrated.complexity_score == 5
    factor = next(f for f in calibrated.factors if f.name == "calibration")
    assert factor.impact == pytest.approx(1.0)  # mean error +2, bounded to +1, clamped at 5
    # other task types are not affected
    assert service.pre_estimate(title, issue_type="bug").calibrated is False


def test_post_analyze_records_only_with_pre_score_and_type() -> None:
    history = InMemoryCalibrationHistory()
    service = ComplexityService(history)
    service.post_analyze(WorkMetrics(), pre_complexity_score=2)
    service.post_analyze(WorkMetrics(), task_type="bug")
    assert history.samples() == ()
    service.post_analyze(WorkMetrics(), pre_complexity_score=2, task_type="Bug")
    assert history.samples() == (CalibrationSample("bug", 2.0, 1.0),)


def test_calibrate_is_bounded_and_windowed() -> None:
    over = [CalibrationSample("task", 5, 1)] * 10
    assert calibrate("task", over).shift == -1.0
    mixed = [CalibrationSample("task", 3, 4)] * 5 + [CalibrationSample("task", 3, 3)] * 5
    result = calibrate("task", mixed)
    assert (result.applied, result.samples, result.shift) == (True, 10, 0.5)
    assert calibrate("task", mixed[:4]).applied is False


def test_health(service: ComplexityService) -> None:
    health = service.health()
    assert (health.status, health.available, health.provider) == ("ok", True, "heuristic")
