"""The rag/search corpus: short synthetic documents, indexed once per run through the API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.scenarios import RAG_COLLECTION

BATCH = 100  # the contract's maximum documents per /rag/index request
_TOPICS = ["invoices", "search", "exports", "login", "billing", "uploads", "reports", "alerts"]
_PROBLEMS = ["are slow", "fail at night", "time out", "look wrong", "need a retry", "went missing"]
_PLACES = ["on mobile", "for large teams", "after the upgrade", "in the EU region", "via the API"]


def documents(count: int) -> Iterator[dict[str, object]]:
    """``count`` short, varied documents (about ten words each), deterministic."""
    for i in range(count):
        topic = _TOPICS[i % len(_TOPICS)]
        problem = _PROBLEMS[(i // len(_TOPICS)) % len(_PROBLEMS)]
        place = _PLACES[(i // 48) % len(_PLACES)]
        yield {
            "id": f"doc-{i}",
            "text": f"Note {i}: {topic} {problem} {place}.",
            "metadata": {"topic": topic},
        }


_OVERLOAD_RETRIES = 5


def indexed_count(base_url: str, headers: dict[str, str] | None = None) -> int:
    """Documents already in the benchmark collection (0 when it does not exist)."""
    listing = httpx.get(f"{base_url}/api/v1/rag/collections", headers=headers, timeout=30)
    listing.raise_for_status()
    for collection in listing.json().get("collections", []):
        if collection.get("name") == RAG_COLLECTION:
            return int(collection.get("documents", 0))
    return 0


def ensure_indexed(base_url: str, count: int, parallel: int = 2) -> float:
    """Index ``count`` documents in batches of 100 unless present; return seconds spent.

    The collection lives in the shared vector store, so every backend searches the same
    chunks whichever backend indexed them. Two requests in flight let one batch's database
    writes overlap the next batch's embedding.
    """
    if indexed_count(base_url) >= count:
        return 0.0
    docs = list(documents(count))
    batches = [docs[i : i + BATCH] for i in range(0, len(docs), BATCH)]
    start = time.perf_counter()
    with (
        httpx.Client(base_url=base_url, timeout=300) as client,
        ThreadPoolExecutor(max_workers=parallel) as pool,
    ):
        for _ in pool.map(lambda batch: _index(client, batch), batches):
            pass
    return time.perf_counter() - start


def _index(client: httpx.Client, batch: list[dict[str, object]]) -> None:
    """One batch, retried as a client should when the model's queue is full (503 with
    Retry-After), a few times."""
    for _ in range(_OVERLOAD_RETRIES):
        response = client.post(
            "/api/v1/rag/index", json={"collection": RAG_COLLECTION, "documents": batch}
        )
        if response.status_code != 503 or "retry-after" not in response.headers:
            break
        time.sleep(float(response.headers["retry-after"]))
    if response.status_code != 200:
        raise RuntimeError(f"indexing failed: {response.status_code} {response.text[:300]}")
