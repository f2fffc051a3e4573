"""The gateway's read timeouts per route group, and the local generation deadline under them.

Both layers need these: the gateway waits this long for a silent backend before its 504, and
a backend running the local LLM must end every generation before that (backends never import
the gateway, so the defaults and the derivation live here).
"""

from __future__ import annotations

from collections.abc import Mapping

# Seconds the gateway lets a backend stay silent, for groups without their own value.
DEFAULT_TIMEOUT_S = 60.0
# Health checks must answer fast; transcription decodes and runs a model on whole files.
DEFAULT_GROUP_TIMEOUTS: dict[str, float] = {"health": 5.0, "transcription": 600.0}
# Route groups whose operations run the LLM (/analysis/generate, /rag/query).
GENERATING_GROUPS = ("analysis", "rag")
# Share of the shortest of those timeouts a local generation may take, queue wait included:
# the rest covers the answer's own work after the model (citations, the response, the log)
# on a loaded machine. 60 s -> 45 s.
GENERATION_DEADLINE_SHARE = 0.75


def group_timeout(group: str, timeouts: Mapping[str, float], default_s: float) -> float:
    """The gateway's timeout for ``group``: its own value, else the default."""
    return {**DEFAULT_GROUP_TIMEOUTS, **timeouts}.get(group, default_s)


def generation_timeout(timeouts: Mapping[str, float], default_s: float) -> float:
    """The gateway's shortest timeout among the groups that generate."""
    return min(group_timeout(group, timeouts, default_s) for group in GENERATING_GROUPS)


def generation_deadline(timeouts: Mapping[str, float], default_s: float) -> float:
    """The local generation deadline derived from the gateway's timeouts (45 s by default)."""
    return GENERATION_DEADLINE_SHARE * generation_timeout(timeouts, default_s)
