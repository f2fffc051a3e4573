"""Health of one engine component, as the component health endpoints report it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal


@dataclass(frozen=True, slots=True)
class ComponentHealth:
    status: Literal["ok", "degraded", "unavailable"]
    component: str
    provider: str
    model: str
    available: bool
    detail: str | None = None
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))
