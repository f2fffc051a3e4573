"""Logging filters (imported by the LOGGING setting before apps load: keep imports light)."""

from __future__ import annotations

import logging

EXPECTED_5XX = frozenset({502, 503, 504})


class UnexpectedErrorsOnly(logging.Filter):
    """For django.request: 502/503/504 are answers the contract expects, not server faults."""

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "status_code", 500) not in EXPECTED_5XX
