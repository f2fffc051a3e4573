"""Model requests may hold only some of a worker's request threads: past that, a prompt 503.

gunicorn's gthread worker hands a request to a thread before reading it, so with every
thread waiting on a model /health waited for a model answer. With 4 threads a worker lets
one model request wait at a time (``runtime.model_threads``); the others are refused at
once in the error shape with Retry-After, well before the queue (256 texts) is full.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

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
