"""The garbage-collector tuning every served process applies once it has started.

Used by the gateway, the FastAPI backend (granian or uvicorn) and each Django worker; a
process-wide setting, so only for a served process, never for an app built in a test.
"""

from __future__ import annotations

import gc

# Young objects collected after this many allocations (CPython's default: 700).
GEN0_THRESHOLD = 10_000


def tune_collector() -> None:
    """Freeze what start-up made and collect young objects less often.

    A served request allocates a few hundred short-lived objects; with hundreds in flight,
    the default gen-0 threshold (700) runs the collector over and over and promotes
    in-flight objects. A backend's log row waits up to half a second in its writer's batch:
    those survive the young collections, fill the old generation and trigger full
    collections, each walking every object the imports, the engine and the pools made
    (~100k). Collected once and frozen, those are never walked again. Measured under
    granian, cached embeddings at 64 connections: ~60 us less CPU per request.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, 20, 20)
