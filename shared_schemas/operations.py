"""The 32 operations of the contract: method, path, models, content types, documented errors.

``contract/generate.py`` renders this registry into ``contract/openapi.json``; backends and
tests iterate it so that no endpoint can be forgotten.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

from shared_schemas import analysis as an
from shared_schemas import complexity as cx
from shared_schemas import complexity_outcome as co
from shared_schemas import embeddings as em
from shared_schemas import generation as gen
from shared_schemas import health as hl
from shared_schemas import rag, rag_collections, rag_search
from shared_schemas import transcription as tr
from shared_schemas import transcription_tools as tt
from shared_schemas.refusals import CONTEXT_LENGTH, Refusal

Method = Literal["GET", "POST", "DELETE"]
# RFC 9110 9.2.2: a request of these methods may be repeated
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
Group = Literal["health", "embeddings", "rag", "analysis", "complexity", "transcription"]
RequestContentType = Literal["application/json", "multipart/form-data"]
# What a request is metered in beyond the request itself (prices: CreditSettings):
# items of a list in the body, the result's usage.prompt_tokens (per 1,000) and
# usage.completion_tokens, and the seconds of audio transcribed.
MeterUnit = Literal["item", "input_token", "generated_token", "audio_second"]

JSON: RequestContentType = "application/json"
MULTIPART: RequestContentType = "multipart/form-data"


@dataclass(frozen=True, slots=True)
class Operation:
    """One HTTP operation of the API, and every fact about it the layers below act on."""

    method: Method
    path: str
    operation_id: str
    group: Group  # the spec's tag, the usage category and the gateway's route group
    summary: str
    response_model: type[BaseModel] | None
    request_model: type[BaseModel] | None = None
    request_content_type: RequestContentType | None = None
    # Other JSON bodies a 200 may carry (e.g. verbose_json); the spec shows oneOf.
    alternative_response_models: tuple[type[BaseModel], ...] = ()
    # Non-JSON 200 content types (text/vtt, audio/mpeg, ...).
    extra_response_content_types: tuple[str, ...] = ()
    error_statuses: tuple[int, ...] = ()
    # A success depends only on the body and the model that answers: served from the
    # shared response cache when that model is deterministic (local).
    cacheable: bool = False
    # Formats constants or does microseconds of arithmetic: an async backend runs it on
    # its event loop, where a worker-thread hop would cost more than the work.
    inline: bool = False
    # Answered by the backend's own dependency checks (its pools), not by an API handler.
    readiness: bool = False
    # The units its price may charge besides the flat per-request price; "item" counts
    # the entries of the body field ``item_field`` (one for a single value).
    meter_units: tuple[MeterUnit, ...] = ()
    item_field: str | None = None
    # Changes stored data (a collection, its chunks, a calibration sample): never mirrored
    # to a shadow backend, which shares the primary's database and vector store.
    writes: bool = False
    # Error answers a schema-valid request may still get (each status is documented in
    # error_statuses): the spec's `x-refusals`, accepted by the conformance check.
    refusals: tuple[Refusal, ...] = ()
    # Names of the {placeholders} in the path, in order (derived from path, once).
    path_params: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        names = tuple(part[1:-1] for part in self.path.split("/") if part.startswith("{"))
        object.__setattr__(self, "path_params", names)
        for refusal in self.refusals:
            if refusal.status not in self.error_statuses:
                raise ValueError(f"{self.operation_id}: refusal {refusal.status} not documented")


def errors(
    *,
    body: bool = False,
    path: bool = False,
    collection: bool = False,
    store: bool = False,
    provider: bool = False,
) -> tuple[int, ...]:
    """Documented error statuses; every operation can be rate limited (429) by the gateway.

    body: 400 malformed, 413 too large, 415 wrong media type, 422 invalid;
    path: 422 for an invalid path parameter; collection: 404 when it does not exist;
    store: 503 when the vector store is down; provider: 503 provider missing or down,
    502/504 a hosted provider failed or timed out.
    """
    statuses = {429}
    if body:
        statuses |= {400, 413, 415, 422}
    if path:
        statuses.add(422)
    if collection:
        statuses.add(404)
    if store:
        statuses.add(503)
    if provider:
        statuses |= {404, 502, 503, 504}  # 404: unknown model id
    return tuple(sorted(statuses))


def _post(
    path: str,
    operation_id: str,
    group: Group,
    summary: str,
    request: type[BaseModel],
    response: type[BaseModel] | None,
    *,
    content_type: RequestContentType = JSON,
    collection: bool = False,
    provider: bool = True,
    alternatives: tuple[type[BaseModel], ...] = (),
    extra_types: tuple[str, ...] = (),
    cacheable: bool = False,
    inline: bool = False,
    meter: tuple[MeterUnit, ...] = (),
    items: str | None = None,
    writes: bool = False,
    refusals: tuple[Refusal, ...] = (),
) -> Operation:
    return Operation(
        method="POST",
        path=path,
        operation_id=operation_id,
        group=group,
        summary=summary,
        response_model=response,
        request_model=request,
        request_content_type=content_type,
        alternative_response_models=alternatives,
        extra_response_content_types=extra_types,
        error_statuses=errors(body=True, collection=collection, provider=provider),
        cacheable=cacheable,
        inline=inline,
        meter_units=meter,
        item_field=items,
        writes=writes,
        refusals=refusals,
    )


def _get(
    path: str,
    operation_id: str,
    group: Group,
    summary: str,
    response: type[BaseModel],
    *,
    inline: bool = False,
) -> Operation:
    return Operation(
        "GET", path, operation_id, group, summary, response, error_statuses=errors(), inline=inline
    )


EMB = "/api/v1/embeddings"
RAG = "/api/v1/rag"
ANA = "/api/v1/analysis"
CPX = "/api/v1/complexity"
TRS = "/api/v1/transcription"
_TRANSCRIPTS = tuple(tr.TRANSCRIPT_MEDIA_TYPES.values())
_AUDIO = tuple(dict.fromkeys(tt.CONVERT_MEDIA_TYPES.values()))
_VERBOSE = (tr.VerboseTranscriptionResponse,)

OPERATIONS: tuple[Operation, ...] = (
    _get("/health", "health_status", "health", "Liveness, version and backend", hl.HealthResponse,
         inline=True),
    Operation(
        "GET",
        "/ready",
        "health_ready",
        "health",
        "Readiness of every dependency (503 when not ready)",
        hl.ReadyResponse,
        error_statuses=(429, 503),
        readiness=True,
    ),
    _get("/live", "health_live", "health", "The process is up", hl.LiveResponse, inline=True),
    _post(f"{EMB}/generate", "embeddings_generate", "embeddings", "Embed one text",
          em.EmbeddingRequest, em.EmbeddingResponse, cacheable=True,
          meter=("input_token",)),
    _post(f"{EMB}/batch", "embeddings_batch", "embeddings", "Embed up to 100 texts",
          em.BatchEmbeddingRequest, em.BatchEmbeddingResponse, cacheable=True,
          meter=("item", "input_token"), items="texts"),
    _post(f"{EMB}/similarity", "embeddings_similarity", "embeddings",
          "Cosine similarity of a text with one or many texts",
          em.SimilarityRequest, em.SimilarityResponse, cacheable=True,
          meter=("item",), items="text2"),
    _get(f"{EMB}/models", "embeddings_models", "embeddings", "Embedding models",
         em.EmbeddingModelsResponse),
    _post(f"{RAG}/index", "rag_index", "rag", "Index (upsert) documents into a collection",
          rag.IndexRequest, rag.IndexResponse, meter=("item",), items="documents",
          writes=True),
    _post(f"{RAG}/index-document", "rag_index_document", "rag",
          "Chunk and index one long document, replacing its old chunks",
          rag.IndexDocumentRequest, rag.IndexDocumentResponse, writes=True),
    _post(f"{RAG}/search", "rag_search", "rag", "Semantic search in a collection",
          rag_search.SearchRequest, rag_search.SearchResponse, collection=True),
    _post(f"{RAG}/query", "rag_query", "rag", "Answer a question from a collection, citing sources",
          rag_search.QueryRequest, rag_search.QueryResponse, collection=True,
          meter=("input_token", "generated_token"), refusals=(CONTEXT_LENGTH,)),
    Operation("GET", f"{RAG}/collections", "rag_collections", "rag", "List collections",
              rag_collections.CollectionsResponse, error_statuses=errors(store=True)),
    Operation("DELETE", f"{RAG}/collection/{{name}}", "rag_delete_collection", "rag",
              "Delete a collection and its chunks", rag_collections.DeleteCollectionResponse,
              error_statuses=errors(path=True, collection=True, store=True), writes=True),
    Operation("GET", f"{RAG}/stats", "rag_stats", "rag", "Totals over all collections",
              rag_collections.RagStatsResponse, error_statuses=errors(store=True)),
    _post(f"{ANA}/analyze", "analysis_analyze", "analysis",
          "Sentiment, summary and keywords in one call", an.AnalyzeRequest, an.AnalyzeResponse,
          cacheable=True),
    _post(f"{ANA}/generate", "analysis_generate", "analysis", "Generate text from a prompt",
          gen.GenerateRequest, gen.GenerateResponse, meter=("input_token", "generated_token"),
          extra_types=(gen.EVENT_STREAM_MEDIA_TYPE,), refusals=(CONTEXT_LENGTH,)),
    _post(f"{ANA}/classify", "analysis_classify", "analysis",
          "Classify a text into given categories", an.ClassifyRequest, an.ClassifyResponse,
          cacheable=True),
    _post(f"{ANA}/summarize", "analysis_summarize", "analysis", "Summarise a text",
          an.SummarizeRequest, an.SummarizeResponse, cacheable=True),
    _post(f"{ANA}/sentiment", "analysis_sentiment", "analysis", "Sentiment of a text",
          an.SentimentRequest, an.SentimentResponse, cacheable=True),
    _post(f"{ANA}/keywords", "analysis_keywords", "analysis", "Ranked keywords of a text",
          an.KeywordsRequest, an.KeywordsResponse, cacheable=True),
    _post(f"{CPX}/pre-estimate", "complexity_pre_estimate", "complexity",
          "Estimate a task's complexity before work starts",
          cx.PreEstimateRequest, cx.PreEstimateResponse, provider=False),
    _post(f"{CPX}/post-analyze", "complexity_post_analyze", "complexity",
          "Actual complexity of a finished task",
          cx.PostAnalyzeRequest, co.PostAnalyzeResponse, provider=False, writes=True),
    _get(f"{CPX}/scale", "complexity_scale", "complexity", "The complexity scale",
         co.ScaleResponse, inline=True),
    _post(f"{CPX}/calculate-adjustment", "complexity_calculate_adjustment", "complexity",
          "Estimate vs actual: accuracy and points adjustment",
          co.AdjustmentRequest, co.AdjustmentResponse, provider=False, inline=True),
    _get(f"{CPX}/health", "complexity_health", "complexity", "Complexity engine health",
         hl.ComponentHealth),
    _post(f"{TRS}/transcribe", "transcription_transcribe", "transcription",
          "Transcribe an uploaded audio file", tr.TranscribeForm, tr.TranscriptionResponse,
          content_type=MULTIPART, alternatives=_VERBOSE, extra_types=_TRANSCRIPTS,
          meter=("audio_second",)),
    _post(f"{TRS}/transcribe-base64", "transcription_transcribe_base64", "transcription",
          "Transcribe base64-encoded audio", tr.TranscribeBase64Request,
          tr.TranscriptionResponse, alternatives=_VERBOSE, extra_types=_TRANSCRIPTS,
          meter=("audio_second",)),
    _post(f"{TRS}/convert", "transcription_convert", "transcription",
          "Convert audio to another format", tt.ConvertForm, None,
          content_type=MULTIPART, provider=False, extra_types=_AUDIO),
    _post(f"{TRS}/estimate-cost", "transcription_estimate_cost", "transcription",
          "Cost and time estimate for an audio length",
          tt.EstimateCostRequest, tt.EstimateCostResponse, provider=False, inline=True),
    _get(f"{TRS}/formats", "transcription_formats", "transcription",
         "Supported formats and limits", tt.FormatsResponse, inline=True),
    _get(f"{TRS}/languages", "transcription_languages", "transcription",
         "Supported languages", tt.LanguagesResponse, inline=True),
    _get(f"{TRS}/health", "transcription_health", "transcription",
         "Transcription engine health", hl.ComponentHealth),
)  # fmt: skip

TAGS: dict[Group, str] = {
    "health": "Process liveness and readiness.",
    "embeddings": "Text embeddings and similarity.",
    "rag": "Retrieval-augmented generation over vector collections.",
    "analysis": "Sentiment, summaries, keywords, classification and text generation.",
    "complexity": "Task complexity estimation and calibration.",
    "transcription": "Speech to text and audio conversion.",
}


# The groups under /api/v1/ (health is served at the root).
API_GROUPS: tuple[Group, ...] = tuple(group for group in TAGS if group != "health")


def group_of_path(path: str) -> Group | None:
    """``/api/v1/rag/search`` -> ``rag`` (any path under a group's prefix), else None."""
    if path.startswith("/api/v1/"):
        candidate = path[8:].split("/", 1)[0]
        for group in API_GROUPS:
            if group == candidate:
                return group
    return None


def by_id() -> dict[str, Operation]:
    """Operations keyed by operationId."""
    return {op.operation_id: op for op in OPERATIONS}


@functools.cache
def _routes_without_parameters() -> dict[tuple[str, str], Operation]:
    return {(op.method, op.path): op for op in OPERATIONS if not op.path_params}


def operation_at(method: str, path: str) -> Operation | None:
    """The operation a request calls when its path has no parameters, else None."""
    return _routes_without_parameters().get((method, path))


def may_repeat(method: str, path: str) -> bool:
    """Whether a request may be sent twice when the first try got no answer at all.

    Idempotent methods may, and so may an operation that writes nothing (most of ours are
    POSTs that only compute: embeddings, analysis, search). A backend that closes a pooled
    connection as the request goes out answers nothing; repeating such a request on a new
    connection turns a 502 into a normal answer.
    """
    if method in IDEMPOTENT_METHODS:
        return True
    operation = operation_at(method, path)
    return operation is not None and not operation.writes
