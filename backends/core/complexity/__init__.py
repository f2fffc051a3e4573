"""Deterministic, explainable complexity estimation with history-based calibration."""

from backends.core.complexity.calibration import (
    CalibrationHistory,
    CalibrationSample,
    InMemoryCalibrationHistory,
)
from backends.core.complexity.service import ComplexityService

__all__ = [
    "CalibrationHistory",
    "CalibrationSample",
    "ComplexityService",
    "InMemoryCalibrationHistory",
]
