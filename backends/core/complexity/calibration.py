"""History-based calibration: correct the systematic error seen on past tasks of a type."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from backends.core.complexity.results import Factor

MIN_SAMPLES = 5
# Only the most recent samples count, so the correction follows how a team works now.
WINDOW = 50
MAX_SHIFT = 1.0


@dataclass(frozen=True, slots=True)
class CalibrationSample:
    task_type: str
    pre_score: float
    actual_score: float


class CalibrationHistory(Protocol):
    """Where finished tasks' (estimated, actual) pairs are kept; oldest first."""

    def samples(self) -> Sequence[CalibrationSample]: ...

    def record(self, sample: CalibrationSample) -> None: ...


class InMemoryCalibrationHistory:
    """Thread-safe, bounded history for tests and single-process use."""

    def __init__(self, samples: Sequence[CalibrationSample] = (), *, maxlen: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._samples: deque[CalibrationSample] = deque(samples, maxlen=maxlen)

    def samples(self) -> Sequence[CalibrationSample]:
        with self._lock:
            return tuple(self._samples)

    def record(self, sample: CalibrationSample) -> None:
        with self._lock:
            self._samples.append(sample)


@dataclass(frozen=True, slots=True)
class Calibration:
    samples: int
    mean_error: float
    shift: float
    applied: bool


def calibrate(task_type: str, samples: Sequence[CalibrationSample]) -> Calibration:
    """Mean signed error (actual - estimated) of the recent same-type samples, bounded."""
    kind = task_type.strip().lower()
    same = [s for s in samples if s.task_type.strip().lower() == kind][-WINDOW:]
    if len(same) < MIN_SAMPLES:
        return Calibration(samples=len(same), mean_error=0.0, shift=0.0, applied=False)
    mean_error = sum(s.actual_score - s.pre_score for s in same) / len(same)
    shift = round(max(-MAX_SHIFT, min(MAX_SHIFT, mean_error)), 4)
    return Calibration(
        samples=len(same), mean_error=round(mean_error, 4), shift=shift, applied=True
    )


def calibration_factor(task_type: str, calibration: Calibration, impact: float) -> Factor:
    """The factor reported for an applied calibration (impact after clamping to the scale)."""
    return Factor(
        name="calibration",
        value=calibration.samples,
        impact=round(impact, 4),
        description=(
            f"Past {task_type} tasks averaged {calibration.mean_error:+.2f} levels versus their "
            f"estimates ({calibration.samples} samples; shift bounded to ±{MAX_SHIFT:g})"
        ),
    )
