"""The inference runtime seen through both real backends: /metrics, Server-Timing, 503.

Each backend runs as a real server process on real Postgres and Redis with the real
MiniLM model. A tiny queue (INFERENCE_QUEUE_SIZE=1, batches of one) lets one batch
request of many texts keep the queue full long enough to be refused a second request.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
import pytest

from devinfra.processes import RunningService, running_service
from shared_schemas import request_meta

BACKENDS = {"fastapi": "backends.fastapi_service", "django": "backends.django_service"}
EMBED = "/api/v1/embeddings/generate"
BATCH = "/api/v1/embeddings/batch"
TIMING = re.compile(r"^queue;dur=\d+\.\d\d, inference;dur=\d+\.\d\d, total;dur=\d+\.\d\d$")
# ~120 tokens each: with batches of one, 100 of them keep the model busy for seconds.
LONG = " ".join(["the nightly export failed after the upgrade and support was called"] * 10)


def _env(migrated_pg_url: str, redis_url: str, queue_size: int) -> dict[str, str]:
    return {
        "DATABASE_URL": migrated_pg_url,
        "REDIS_URL": redis_url,
        "LLM_PROVIDER": "extractive",
        "EMBEDDING_PROVIDER": "local",
        "VECTOR_STORE": "pgvector",
        "QDRANT_URL": "",
        "QDRANT_PATH": "",
        "OPENAI_API_KEY": "",
        "INFERENCE_QUEUE_SIZE": str(queue_size),
        "INFERENCE_MAX_BATCH_SIZE": "1",
        "DJANGO_WORKERS": "1",  # /metrics and the requests must reach the same process
    }


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def backend(
    request: pytest.FixtureRequest,
    migrated_pg_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningService]:
    env = _env(migrated_pg_url, redis_url, queue_size=1)
    name: str = request.param
    with running_service(BACKENDS[name], env, tmp_path_factory.mktemp(f"{name}-logs")) as svc:
        yield svc


def _sample(metrics: str, name: str) -> float:
    """The sum of every sample of ``name`` (over its labels); 0 when absent."""
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$", re.MULTILINE)
    return sum(float(value) for value in pattern.findall(metrics))


def _metrics(service: RunningService) -> str:
    response = httpx.get(service.base_url + request_meta.METRICS_PATH, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def test_a_model_request_carries_server_timing(backend: RunningService) -> None:
    body = {"text": f"server timing {uuid.uuid4()}"}
    response = httpx.post(backend.base_url + EMBED, json=body, timeout=30)
    assert response.status_code == 200
    assert response.headers["x-cache"] == "miss"
    assert TIMING.match(response.headers["server-timing"]), response.headers["server-timing"]


def test_a_request_without_a_model_call_has_no_server_timing(backend: RunningService) -> None:
    body = {"text": f"cached {uuid.uuid4()}"}
    httpx.post(backend.base_url + EMBED, json=body, timeout=30)
    hit = httpx.post(backend.base_url + EMBED, json=body, timeout=30)
    assert hit.headers["x-cache"] == "hit"
    assert "server-timing" not in hit.headers
    assert "server-timing" not in httpx.get(backend.base_url + "/health").headers


def test_metrics_report_batches_the_log_writer_and_the_cache(backend: RunningService) -> None:
    body = {"text": f"metrics {uuid.uuid4()}"}
    before = _metrics(backend)
    httpx.post(backend.base_url + EMBED, json=body, timeout=30)
    httpx.post(backend.base_url + EMBED, json=body, timeout=30)
    after = _metrics(backend)
    for name, grew_by in (
        ("inference_batch_size_count", 1),
        ("inference_seconds_count", 1),
        ('response_cache_lookups_total{result="miss"}', 1),
        ('response_cache_lookups_total{result="hit"}', 1),
    ):
        assert _sample(after, name) - _sample(before, name) >= grew_by, name
    families = re.findall(r"^# TYPE (\S+) ", after, re.MULTILINE)
    for name in ("inference_queue_depth", "inference_rejected", "inference_cancelled",
                 "request_log_written", "request_log_refused", "request_log_overflowed",
                 "request_log_pending", "backend_process_id"):  # fmt: skip
        assert name in families or f"{name}_total" in families, name  # counters: _total


def test_a_full_queue_answers_503_with_retry_after(backend: RunningService) -> None:
    texts = [f"{LONG} {uuid.uuid4()}" for _ in range(100)]
    outcome: dict[str, httpx.Response] = {}

    def batch() -> None:
        outcome["batch"] = httpx.post(backend.base_url + BATCH, json={"texts": texts}, timeout=300)

    worker = threading.Thread(target=batch)
    worker.start()
    try:
        while not _sample(_metrics(backend), "inference_queue_depth"):
            assert worker.is_alive(), "the batch finished before its texts were seen queued"
        refused = httpx.post(backend.base_url + EMBED, json={"text": str(uuid.uuid4())}, timeout=30)
    finally:
        worker.join(300)
    assert refused.status_code == 503, refused.text
    assert int(refused.headers["retry-after"]) >= 1
    body = refused.json()
    assert body["error"]["code"] == "service_unavailable", body
    assert body["request_id"] == refused.headers["x-request-id"]
    assert outcome["batch"].status_code == 200  # the request already queued is served
    assert _sample(_metrics(backend), "inference_rejected_total") >= 1


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def roomy(
    request: pytest.FixtureRequest,
    migrated_pg_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningService]:
    """A backend with room in the queue (and batches of one): requests wait, none is refused."""
    env = _env(migrated_pg_url, redis_url, queue_size=1000)
    name: str = request.param
    with running_service(BACKENDS[name], env, tmp_path_factory.mktemp(f"roomy-{name}")) as svc:
        yield svc


def _post_and_hang_up(base_url: str, path: str, body: dict[str, object]) -> None:
    """Send a whole request, then close the connection without reading the answer."""
    parts = urlsplit(base_url)
    payload = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode()
    with socket.create_connection((parts.hostname or "", parts.port or 80)) as sock:
        sock.sendall(head + payload)


def test_a_waiting_request_whose_client_left_is_dropped(roomy: RunningService) -> None:
    """Its text never enters a batch; its neighbour in the queue is unaffected.

    FastAPI hears of the disconnect (ASGI http.disconnect) and drops the request at once;
    Django's WSGI does not, so the runtime peeks at the client's socket before the
    request's first batch (mlapi/client_socket.py) and drops it then.
    """
    texts = [f"{LONG} {uuid.uuid4()}" for _ in range(100)]
    outcome: dict[str, httpx.Response] = {}
    url = roomy.base_url

    def batch() -> None:
        outcome["batch"] = httpx.post(url + BATCH, json={"texts": texts}, timeout=300)

    before = _metrics(roomy)
    worker = threading.Thread(target=batch)
    worker.start()
    try:
        while not _sample(_metrics(roomy), "inference_queue_depth"):
            assert worker.is_alive(), "the batch finished before its texts were seen queued"
        _post_and_hang_up(url, EMBED, {"text": f"left {uuid.uuid4()}"})
    finally:
        worker.join(300)
    assert outcome["batch"].status_code == 200
    deadline = time.monotonic() + 60
    while _sample(after := _metrics(roomy), "inference_cancelled_total") == _sample(
        before, "inference_cancelled_total"
    ):
        assert time.monotonic() < deadline, "the request whose client left was not dropped"
        time.sleep(0.05)
    # batches of one: the batch request's 100 texts ran, the hung-up request's text did not
    ran = _sample(after, "inference_batch_size_count") - _sample(
        before, "inference_batch_size_count"
    )
    assert ran == len(texts), ran


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def few_threads(
    request: pytest.FixtureRequest,
    migrated_pg_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningService]:
    """A backend with few threads for model requests and a queue of 16 texts."""
    env = {
        **_env(migrated_pg_url, redis_url, queue_size=16),
        "FASTAPI_ENGINE_THREADS": "2",
        "DJANGO_THREADS": "8",  # 4 of them may wait on the model (runtime.model_threads)
    }
    name: str = request.param
    with running_service(BACKENDS[name], env, tmp_path_factory.mktemp(f"few-{name}")) as svc:
        yield svc


# awaited on FastAPI's event loop / run in one of its engine threads (classify embeds the
# text, a label and its prompt in one model call: 3 items, so 2 threads never fill the queue)
SINGLE_TEXTS = {
    "embed": (EMBED, f"{LONG} {LONG}", {}),
    "classify": ("/api/v1/analysis/classify", LONG, {"categories": ["billing"]}),
}


@pytest.mark.parametrize("kind", sorted(SINGLE_TEXTS))
def test_single_texts_past_threads_and_queue_get_a_prompt_503(
    few_threads: RunningService, kind: str
) -> None:
    """More single-text requests at once than the threads and the queue hold: each one is
    served or refused at once (503 + Retry-After), none waits behind the others.

    FastAPI used to let them all wait for one of its engine threads: each thread holds one
    text in the model's queue, so the queue never filled and nothing was refused.
    """
    path, text, extra = SINGLE_TEXTS[kind]

    clients = 40
    start = threading.Barrier(clients)

    def post(n: int) -> tuple[httpx.Response, float]:
        body = {"text": f"{n} {uuid.uuid4()} {text}", **extra}
        with httpx.Client(base_url=few_threads.base_url, timeout=300) as client:
            assert client.get("/health").status_code == 200  # connected before the clock
            start.wait()
            started = time.perf_counter()
            answer = client.post(path, json=body)
            return answer, time.perf_counter() - started

    with ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(post, range(clients)))
    statuses = Counter(answer.status_code for answer, _ in answers)
    assert set(statuses) == {200, 503}, statuses
    for refused, _ in (a for a in answers if a[0].status_code == 503):
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"]["code"] == "service_unavailable", refused.text
    # refused at once: never after the slowest answer (it waited for every model call
    # ahead of it), while the model ran for most of the run
    slowest_refusal = max(s for a, s in answers if a.status_code == 503)
    served = sorted(s for a, s in answers if a.status_code == 200)
    assert slowest_refusal < served[-1], (slowest_refusal, served)
