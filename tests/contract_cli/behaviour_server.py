"""A small implementation of part of the real contract, correct or wrong in one behaviour.

It serves the operations in SUBSET of contract/openapi.json with fake engines (hashed
word vectors, an in-memory collection store, a toy complexity heuristic) whose answers are
schema-valid. `build_app(defect=...)` breaks exactly one promise while every response keeps
its shape, so the core profile passes and only the behaviour profile can tell.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jsonschema_rs
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router

from shared_schemas.common import COLLECTION_PATTERN

CONTRACT = Path(__file__).resolve().parents[2] / "contract" / "openapi.json"
SUBSET = (
    "health_status",
    "embeddings_generate",
    "embeddings_batch",
    "embeddings_similarity",
    "rag_index",
    "rag_index_document",
    "rag_search",
    "rag_query",
    "rag_collections",
    "rag_delete_collection",
    "rag_stats",
    "analysis_classify",
    "analysis_summarize",
    "analysis_generate",
    "complexity_pre_estimate",
    "complexity_post_analyze",
    "complexity_scale",
    "transcription_estimate_cost",
)
# defect -> the test (operationId/promise) it must fail. One per kind of promise at least.
DEFECTS: dict[str, str] = {
    "unnormalised-embeddings": "embeddings_generate/unit-length",  # normalisation
    "batch-reversed": "embeddings_batch/same-as-single",  # relation (order)
    "ascending-search": "rag_search/best-first",  # ordering
    "ignores-top-k": "rag_search/top-k",  # limit from the request
    "ignores-max-length": "analysis_summarize/max-length",  # limit from the request
    "classify-not-a-distribution": "analysis_classify/distribution",  # sum
    "stats-miscount": "rag_stats/totals",  # sum
    "hours-outside-range": "complexity_pre_estimate/hours-in-range",  # range
    "minutes-are-seconds": "transcription_estimate_cost/minutes-and-cost",  # unit
    "fresh-request-id": "health_status/request-id-header",  # header
    "index-stores-nothing": "rag_index/indexed-is-searchable",  # relation
    "reindex-appends": "rag_index/reindex-replaces",  # relation
    "collections-miscount": "rag_index/listed-with-counts",  # relation
    "delete-keeps": "rag_delete_collection/deleted-is-gone",  # relation
    "document-keeps-old-chunks": "rag_index_document/reindex-document-replaces",  # relation
    "calibration-ignored": "complexity_pre_estimate/post-analysis-calibrates",  # relation
    "stream-drops-a-token": "analysis_generate/stream-adds-up",  # relation (event stream)
}
DIMS = 16
_WORD = re.compile(r"\w+")
_COLLECTION = re.compile(COLLECTION_PATTERN)
_SCALE: list[dict[str, Any]] = [
    {"level": n, "name": name, "description": f"Level {n}.", "hours_min": lo, "hours_max": hi,
     "base_points": pts, "indicators": []}
    for n, name, lo, hi, pts in (
        (1, "Trivial", 0.1, 1.0, 1), (2, "Simple", 1.0, 4.0, 3), (3, "Moderate", 4.0, 16.0, 5),
        (4, "Complex", 16.0, 40.0, 8), (5, "Epic", 40.0, 120.0, 13),
    )
]  # fmt: skip
_TABLE = {2: 1.25, 1: 1.15, 0: 1.10, -1: 1.0, -2: 0.9}


def subset_spec() -> dict[str, Any]:
    """contract/openapi.json cut down to the operations this server implements."""
    spec: dict[str, Any] = json.loads(CONTRACT.read_text())
    paths: dict[str, Any] = {}
    for path, item in spec["paths"].items():
        kept = {m: op for m, op in item.items() if op.get("operationId") in SUBSET}
        if kept:
            paths[path] = kept
    spec["paths"] = paths
    return spec


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


def _error(status: int, code: str, message: str, rid: str, **extra: Any) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": []}, "request_id": rid}
    return JSONResponse(body, status_code=status, **extra)


def embed(text: str) -> list[float]:
    """A bag of hashed words, L2-normalised: similar texts share words, so they score high."""
    vector = [0.0] * DIMS
    # The first 64 words are enough to tell texts apart and keep fuzzed 500 000-char bodies cheap.
    for word in _WORD.findall(text[:2000].lower())[:64] or [text[:64]]:
        digest = hashlib.sha256(word.encode("utf-8", "surrogatepass")).digest()
        for i in range(DIMS):
            vector[i] += digest[i] / 255.0 - 0.5
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


def cosine(a: list[float], b: list[float]) -> float:
    return max(-1.0, min(1.0, sum(x * y for x, y in zip(a, b, strict=True))))


def build_app(defect: str | None = None) -> Starlette:
    """The server; `defect` (a key of DEFECTS) breaks that one behaviour."""
    assert defect is None or defect in DEFECTS, defect
    spec = subset_spec()
    components = spec["components"]
    validators: dict[str, Any] = {}
    for item in spec["paths"].values():
        for op in item.values():
            body = op.get("requestBody")
            if body:
                schema = body["content"]["application/json"]["schema"]
                validators[op["operationId"]] = jsonschema_rs.validator_for(
                    {**schema, "components": components}
                )
    collections: dict[str, dict[str, Any]] = {}
    samples: dict[str, int] = {}

    def request_id(request: Request) -> str:
        given = request.headers.get("x-request-id", "")
        ok = 0 < len(given) <= 128 and all(0x21 <= ord(c) <= 0x7E for c in given)
        return given if ok and defect != "fresh-request-id" else uuid.uuid4().hex

    def answer(body: dict[str, Any], rid: str) -> JSONResponse:
        return JSONResponse(body, headers={"X-Request-ID": rid})

    Handler = Callable[[dict[str, Any], Request, str], Awaitable[Response]]

    def post(op_id: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            rid = request_id(request)
            headers = {"X-Request-ID": rid}
            if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
                return _error(415, "unsupported_media_type", "expected JSON", rid, headers=headers)
            try:
                payload = json.loads(await request.body())
            except ValueError:
                return _error(400, "bad_request", "malformed JSON", rid, headers=headers)
            if not validators[op_id].is_valid(payload):
                return _error(422, "validation_error", "invalid body", rid, headers=headers)
            return await handler(payload, request, rid)

        return endpoint

    def get(handler: Callable[[str], dict[str, Any]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            rid = request_id(request)
            return answer(handler(rid), rid)

        return endpoint

    # ---- embeddings
    async def generate(p: dict[str, Any], r: Request, rid: str) -> Response:
        vector = embed(p["text"])
        if defect == "unnormalised-embeddings":
            vector = [x * 0.5 for x in vector]
        words = len(p["text"].split())
        usage = {"prompt_tokens": words, "completion_tokens": 0, "total_tokens": words}
        return answer(
            {"embedding": vector, "dimensions": DIMS, "model": "fake-embed", "provider": "local",
             "usage": usage}, rid)  # fmt: skip

    async def batch(p: dict[str, Any], r: Request, rid: str) -> Response:
        vectors = [embed(t) for t in p["texts"]]
        if defect == "batch-reversed":
            vectors.reverse()
        words = sum(len(t.split()) for t in p["texts"])
        usage = {"prompt_tokens": words, "completion_tokens": 0, "total_tokens": words}
        return answer(
            {"embeddings": vectors, "dimensions": DIMS, "count": len(vectors),
             "model": "fake-embed", "provider": "local", "usage": usage}, rid)  # fmt: skip

    async def similarity(p: dict[str, Any], r: Request, rid: str) -> Response:
        base = embed(p["text1"])
        other = p["text2"]
        value: Any = (
            cosine(base, embed(other)) if isinstance(other, str)
            else [cosine(base, embed(t)) for t in other]
        )  # fmt: skip
        return answer({"similarity": value, "model": "fake-embed", "provider": "local"}, rid)

    # ---- rag
    def collection_info(name: str) -> dict[str, Any]:
        points = collections[name]["points"]
        chunks = 0 if defect == "collections-miscount" else len(points)
        return {"name": name, "documents": len({p["document_id"] for p in points}),
                "chunks": chunks, "dimensions": DIMS,
                "created_at": collections[name]["created_at"]}  # fmt: skip

    def ensure(name: str) -> list[dict[str, Any]]:
        collections.setdefault(name, {"points": [], "created_at": _now()})
        points: list[dict[str, Any]] = collections[name]["points"]
        return points

    def upsert(points: list[dict[str, Any]], point: dict[str, Any]) -> None:
        if defect != "reindex-appends":
            points[:] = [q for q in points if q["id"] != point["id"]]
        points.append(point)

    async def index(p: dict[str, Any], r: Request, rid: str) -> Response:
        name = p.get("collection", "default")
        points = ensure(name)
        ids = [d.get("id") or str(uuid.uuid4()) for d in p["documents"]]
        for doc_id, doc in zip(ids, p["documents"], strict=True):
            if defect != "index-stores-nothing":
                upsert(points, {"id": doc_id, "document_id": doc_id, "text": doc["text"],
                                "metadata": doc.get("metadata", {}), "chunk_index": None,
                                "vector": embed(doc["text"])})  # fmt: skip
        return answer({"collection": name, "indexed": len(ids), "ids": ids,
                       "model": "fake-embed", "provider": "local"}, rid)  # fmt: skip

    async def index_document(p: dict[str, Any], r: Request, rid: str) -> Response:
        name, doc_id = p.get("collection", "default"), p["document_id"]
        size = int(p.get("chunk_size", 1000))
        overlap = min(int(p.get("chunk_overlap", 200)), size // 2)
        points = ensure(name)
        old = [q for q in points if q["document_id"] == doc_id]
        if defect != "document-keeps-old-chunks":
            points[:] = [q for q in points if q["document_id"] != doc_id]
        text, start, pieces = p["text"], 0, []
        while start < len(text):
            piece = text[start : start + size].strip()
            if piece:
                pieces.append(piece)
            start += size - overlap
        for i, piece in enumerate(pieces):
            upsert(points, {"id": f"{doc_id}:{i}:{uuid.uuid4().hex[:6]}", "document_id": doc_id,
                            "text": piece, "metadata": p.get("metadata", {}), "chunk_index": i,
                            "vector": embed(piece)})  # fmt: skip
        return answer({"collection": name, "document_id": doc_id, "chunks": len(pieces),
                       "replaced": len(old), "chunk_size": size, "chunk_overlap": overlap,
                       "model": "fake-embed", "provider": "local"}, rid)  # fmt: skip

    def retrieve(p: dict[str, Any], limit: int) -> list[dict[str, Any]] | None:
        name = p.get("collection", "default")
        if name not in collections:
            return None
        query = embed(p["query"])
        wanted = p.get("filter") or {}
        threshold = p.get("score_threshold", 0.0)
        scored = []
        for point in collections[name]["points"]:
            if any(point["metadata"].get(k, object()) != v for k, v in wanted.items()):
                continue
            score = round(cosine(query, point["vector"]), 6)
            if score >= threshold:
                fields = ("id", "document_id", "text", "metadata", "chunk_index")
                scored.append({**{k: point[k] for k in fields}, "score": score})
        scored.sort(key=lambda hit: -hit["score"])
        if defect == "ascending-search":
            scored.reverse()
        return scored if defect == "ignores-top-k" else scored[:limit]

    async def search(p: dict[str, Any], r: Request, rid: str) -> Response:
        results = retrieve(p, int(p.get("top_k", 5)))
        if results is None:
            return _error(
                404, "not_found", "no such collection", rid, headers={"X-Request-ID": rid}
            )
        results = results[:100]
        return answer({"query": p["query"], "collection": p.get("collection", "default"),
                       "results": results, "total": len(results), "model": "fake-embed",
                       "provider": "local"}, rid)  # fmt: skip

    async def query(p: dict[str, Any], r: Request, rid: str) -> Response:
        sources = retrieve(p, int(p.get("top_k", 5)))
        if sources is None:
            return _error(
                404, "not_found", "no such collection", rid, headers={"X-Request-ID": rid}
            )
        sources = sources[:20]
        text = sources[0]["text"] if sources else "No relevant context found."
        return answer({"answer": text, "sources": sources, "model": "extractive",
                       "provider": "extractive", "usage": None}, rid)  # fmt: skip

    def list_collections(rid: str) -> dict[str, Any]:
        return {"collections": [collection_info(n) for n in sorted(collections)]}

    def stats(rid: str) -> dict[str, Any]:
        items = [collection_info(n) for n in sorted(collections)]
        extra = 1 if defect == "stats-miscount" else 0
        return {"collections": len(items), "documents": sum(c["documents"] for c in items) + extra,
                "chunks": sum(c["chunks"] for c in items), "queries": 0,
                "vector_store": "pgvector", "embedding_model": "fake-embed",
                "per_collection": items}  # fmt: skip

    async def delete_collection(request: Request) -> Response:
        rid = request_id(request)
        name = request.path_params["name"]
        headers = {"X-Request-ID": rid}
        if not _COLLECTION.fullmatch(name):
            return _error(422, "validation_error", "bad collection name", rid, headers=headers)
        if name not in collections:
            return _error(404, "not_found", "no such collection", rid, headers=headers)
        chunks = len(collections[name]["points"])
        if defect != "delete-keeps":
            del collections[name]
        return answer({"deleted": True, "name": name, "chunks_deleted": chunks}, rid)

    # ---- analysis
    async def classify(p: dict[str, Any], r: Request, rid: str) -> Response:
        labels: dict[str, str] = {}
        for category in p["categories"]:
            labels.setdefault(category.strip().casefold(), category.strip())
        names = list(labels.values())
        base = embed(p["text"])
        sims = [cosine(base, embed(n)) for n in names]
        multi = bool(p.get("multi_label", False))
        if multi or defect == "classify-not-a-distribution":
            scores = [(s + 1) / 2 for s in sims]
        else:
            exp = [math.exp(s * 5) for s in sims]
            scores = [e / sum(exp) for e in exp]
        ranked = sorted(zip(names, scores, strict=True), key=lambda pair: -pair[1])
        text = p["text"]
        return answer({
            "label": ranked[0][0],
            "classifications": [{"category": c, "confidence": round(s, 6)} for c, s in ranked],
            "multi_label": multi,
            "text_preview": text if len(text) <= 100 else text[:100] + "...",
            "model": "fake-embed", "provider": "local"}, rid)  # fmt: skip

    async def summarize(p: dict[str, Any], r: Request, rid: str) -> Response:
        limit = 1000 if defect == "ignores-max-length" else int(p.get("max_length", 100))
        words = p["text"].split()[:limit]
        summary = " ".join(words)
        return answer({"summary": summary, "key_points": [], "word_count": len(words),
                       "model": "first-words", "provider": "local"}, rid)  # fmt: skip

    # ---- complexity
    async def pre_estimate(p: dict[str, Any], r: Request, rid: str) -> Response:
        level = min(5, 1 + len(p["title"].split()) // 3 + len(p.get("related_files", [])) // 20)
        info = _SCALE[level - 1]
        kind = p.get("issue_type", "task")
        count = min(samples.get(kind, 0), 50)
        hours = (info["hours_min"] + info["hours_max"]) / 2
        if defect == "hours-outside-range":
            hours = info["hours_max"] + 1.0
        return answer({
            "complexity_score": level, "complexity_name": info["name"],
            "estimated_points": info["base_points"], "estimated_hours": hours,
            "hours_range": {"min": info["hours_min"], "max": info["hours_max"]},
            "confidence": 0.5, "factors": [], "reasoning": f"Level {level}.",
            "calibrated": count >= 5, "calibration_samples": count,
            "model": "toy", "provider": "heuristic"}, rid)  # fmt: skip

    async def post_analyze(p: dict[str, Any], r: Request, rid: str) -> Response:
        names = ("lines_added", "lines_removed", "files_changed", "review_comments", "blockers")
        metrics: dict[str, Any] = {name: int(p.get(name, 0)) for name in names}
        metrics["commits"] = int(p.get("commits", 1))
        metrics["time_to_merge_hours"] = p.get("time_to_merge_hours")
        metrics["time_spent_hours"] = p.get("time_spent_hours")
        total = metrics["lines_added"] + metrics["lines_removed"]
        metrics["total_lines_changed"] = total
        level = 1 + sum(total >= bound for bound in (10, 50, 200, 1000))
        pre = p.get("pre_complexity_score")
        multiplier, accuracy = 1.0, None
        if pre is not None:
            diff = max(-2, min(2, math.floor(abs(level - pre) + 0.5) * (1 if level >= pre else -1)))
            multiplier = _TABLE[diff]
            accuracy = round(max(0.0, 100.0 - 25.0 * abs(pre - level)), 2)
            if p.get("task_type") and defect != "calibration-ignored":
                samples[p["task_type"]] = samples.get(p["task_type"], 0) + 1
        info = _SCALE[level - 1]
        return answer({
            "actual_complexity": level, "complexity_name": info["name"],
            "actual_points": math.floor(info["base_points"] * multiplier + 0.5),
            "metrics": metrics, "accuracy_score": accuracy, "point_adjustment": multiplier,
            "adjustment_reason": "table", "analysis": f"Level {level}.",
            "model": "toy", "provider": "heuristic"}, rid)  # fmt: skip

    # ---- generation: the prompt's first words, one token each
    async def generate_text(p: dict[str, Any], r: Request, rid: str) -> Response:
        words = (p["prompt"].split() or ["ok"])[: min(p.get("max_tokens", 1000), 8)]
        text = " ".join(words)
        prompt_tokens = len(p["prompt"].split())
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(words),
                 "total_tokens": prompt_tokens + len(words)}  # fmt: skip
        whole = {"text": text, "model": "fake-llm", "provider": "local",
                 "finish_reason": "stop", "usage": usage}  # fmt: skip
        if not p.get("stream"):
            return answer(whole, rid)
        pieces = [word if i == 0 else " " + word for i, word in enumerate(words)]
        if defect == "stream-drops-a-token":
            pieces = pieces[:-1] if len(pieces) > 1 else [pieces[0][:-1] or "x"]
        events = [f"event: token\ndata: {json.dumps({'text': t})}\n\n" for t in pieces]
        events.append(f"event: done\ndata: {json.dumps(whole)}\n\n")
        return Response(
            "".join(events).encode(), media_type="text/event-stream", headers={"X-Request-ID": rid}
        )

    # ---- transcription
    async def estimate_cost(p: dict[str, Any], r: Request, rid: str) -> Response:
        seconds = float(p["duration_seconds"])
        minutes = seconds if defect == "minutes-are-seconds" else round(seconds / 60, 4)
        return answer({
            "duration_seconds": seconds, "duration_minutes": minutes,
            "cost_usd": round(minutes * 0.006, 6), "price_per_minute": 0.006,
            "estimated_processing_seconds": round(seconds * 0.1, 3),
            "model": "fake-whisper", "provider": "local"}, rid)  # fmt: skip

    def health(rid: str) -> dict[str, Any]:
        return {"status": "ok", "service": "fake", "version": spec["info"]["version"],
                "backend": f"fake-{defect or 'correct'}", "timestamp": _now()}  # fmt: skip

    def scale(rid: str) -> dict[str, Any]:
        return {"scale": _SCALE}

    handlers: dict[str, Handler] = {
        "embeddings_generate": generate, "embeddings_batch": batch,
        "embeddings_similarity": similarity, "rag_index": index,
        "rag_index_document": index_document, "rag_search": search, "rag_query": query,
        "analysis_classify": classify, "analysis_summarize": summarize,
        "analysis_generate": generate_text,
        "complexity_pre_estimate": pre_estimate, "complexity_post_analyze": post_analyze,
        "transcription_estimate_cost": estimate_cost,
    }  # fmt: skip
    getters = {"health_status": health, "rag_collections": list_collections, "rag_stats": stats,
               "complexity_scale": scale}  # fmt: skip
    routes = [Route("/openapi.json", get(lambda rid: spec), methods=["GET"])]
    for path, item in spec["paths"].items():
        for method, op in item.items():
            op_id = op["operationId"]
            if op_id == "rag_delete_collection":
                routes.append(Route(path, delete_collection, methods=["DELETE"]))
            elif method == "get":
                routes.append(Route(path, get(getters[op_id]), methods=["GET"]))
            else:
                routes.append(Route(path, post(op_id, handlers[op_id]), methods=["POST"]))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        rid = request_id(request)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
        headers = {**(exc.headers or {}), "X-Request-ID": rid}
        return _error(exc.status_code, code, str(exc.detail), rid, headers=headers)

    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    app.router = Router(routes=routes, redirect_slashes=False)
    return app
