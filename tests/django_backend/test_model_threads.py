"""Model requests may hold only some of a worker's request threads: past that, a prompt 503.

gunicorn's gthread worker hands a request to a thread before reading it, so with every
thread waiting on a model /health waited for a model answer. With 4 threads a worker lets
one model request wait at a time (``runtime.model_threads``); the others are refused at
once in the error shape with Retry-After, well before the queue (256 texts) is full.
"""

from __future__ import annotations

import contextlib
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from backends.core.inference.runtime import usable_cores
from backends.django_service.mlapi.runtime import MODEL_NICE
from shared_schemas.operations import by_id

BATCH = by_id()["embeddings_batch"].path
# ~250 tokens each: one request of 10 runs for a second or more on 2 cores
LONG = " ".join(f"word{i} of a long support ticket about exports" for i in range(40))


def test_model_requests_past_the_worker_cap_get_a_prompt_503(start_django_server: Any) -> None:
    with start_django_server(DJANGO_WORKERS="1", DJANGO_THREADS="4") as server:
        texts = [f"{n} {LONG}" for n in range(10)]
        with ThreadPoolExecutor(3) as pool:
            answers = list(
                pool.map(
                    lambda n: httpx.post(
                        server.base_url + BATCH,
                        json={"texts": [f"{n} {t}" for t in texts]},
                        timeout=120,
                    ),
                    range(3),
                )
            )
        statuses = sorted(a.status_code for a in answers)
        assert statuses[0] == 200 and 503 in statuses, statuses
        for refused in (a for a in answers if a.status_code == 503):
            assert int(refused.headers["Retry-After"]) >= 1
            assert refused.json()["error"]["code"] == "service_unavailable", refused.text
        assert httpx.get(server.base_url + "/health", timeout=10).status_code == 200


def _nice_by_thread(pid: int) -> list[int]:
    """The nice value of each thread of a process (field 19 of /proc/<pid>/task/*/stat)."""
    values = []
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        with contextlib.suppress(FileNotFoundError):  # a thread that just ended
            values.append(int(stat.read_text().rsplit(")", 1)[1].split()[16]))
    return values


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_only_the_model_threads_run_below_the_request_threads(django_server: Any) -> None:
    """The model workers (the embedding model's: one per inference thread) run at
    MODEL_NICE, every other thread of the gunicorn worker at the server's own priority."""
    answer = httpx.post(
        django_server.base_url + by_id()["embeddings_generate"].path,
        json={"text": "a priority check"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    arbiter = django_server.process.pid
    (worker,) = Path(f"/proc/{arbiter}/task/{arbiter}/children").read_text().split()
    base = os.getpriority(os.PRIO_PROCESS, arbiter)
    values = _nice_by_thread(int(worker))
    lowered = [v for v in values if v != base]
    # the embedding workers, and any other model's worker started by earlier tests
    assert set(lowered) == {base + MODEL_NICE}, (base, values)
    assert len(lowered) >= usable_cores(), (base, values)
