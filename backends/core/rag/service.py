"""Retrieval-augmented generation over a vector store (synchronous, framework-free)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from backends.core.embeddings.base import (
    AwaitableEmbeddingProvider,
    EmbeddingProvider,
    embed_async,
)
from backends.core.errors import InvalidInput, NotFound
from backends.core.llm.base import LLMProvider
from backends.core.rag import answering
from backends.core.rag.chunking import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_OVERLAP,
    chunk_spans,
    effective_overlap,
)
from backends.core.rag.results import (
    DEFAULT_COLLECTION,
    EXTRACTIVE_PROVIDER,
    DeleteCollectionResult,
    DocumentInput,
    IndexDocumentResult,
    IndexResult,
    QueryOutcome,
    RagStats,
    SearchOutcome,
)
from backends.core.vectorstore.base import (
    CollectionInfo,
    MetadataValue,
    Point,
    ScoredPoint,
    VectorStore,
)
from backends.core.vectorstore.sanitize import clean_metadata, clean_text

# Chunk ids are "<document_id>#<n>": '#' is outside the document-id alphabet, so a chunk id
# can never collide with a whole document indexed under its own id.
CHUNK_ID_SEPARATOR = "#"
_MAX_FOUND = 1024  # collection names remembered as found (forgotten all at once past it)


class RagService:
    """Index, search and answer; ``llm`` None means extractive answers."""

    def __init__(
        self, store: VectorStore, embeddings: EmbeddingProvider, llm: LLMProvider | None = None
    ) -> None:
        self.store = store
        self.embeddings = embeddings
        self.llm = llm
        # Collections a search of this process found: the next search of one skips the
        # check that spares an unknown collection's embedding (the search itself still
        # answers NotFound for a collection dropped since, and it is forgotten then).
        self._found: set[str] = set()

    def index(
        self, documents: Sequence[DocumentInput], collection: str = DEFAULT_COLLECTION
    ) -> IndexResult:
        """Store each document whole (one point); re-indexing an id replaces that document."""
        if not documents:
            raise InvalidInput("no documents to index")
        ids = [clean_text(d.id) if d.id else str(uuid.uuid4()) for d in documents]
        texts = [self._text(d.text, "documents", i, "text") for i, d in enumerate(documents)]
        vectors = self._embed(texts)
        points = [
            Point(
                id=doc_id,
                document_id=doc_id,
                chunk_index=None,
                text=text,
                vector=vector,
                metadata=clean_metadata(doc.metadata),
            )
            for doc_id, text, vector, doc in zip(ids, texts, vectors, documents, strict=True)
        ]
        self.store.ensure_collection(collection, int(vectors.shape[1]))
        self.store.replace_documents(collection, points)
        return IndexResult(
            collection=collection,
            indexed=len(points),
            ids=ids,
            model=self.embeddings.model,
            provider=self.embeddings.provider,
        )

    def index_document(
        self,
        document_id: str,
        text: str,
        collection: str = DEFAULT_COLLECTION,
        metadata: Mapping[str, MetadataValue] | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        chunk_overlap: int = DEFAULT_OVERLAP,
    ) -> IndexDocumentResult:
        """Chunk a document and make those chunks replace all of its previous ones."""
        document_id = clean_text(document_id)
        chunks = chunk_spans(self._text(text, "text"), chunk_size, chunk_overlap)
        if not chunks:
            raise InvalidInput("the document has no text to index")
        vectors = self._embed([c.text for c in chunks])
        meta = clean_metadata(metadata)
        points = [
            Point(
                id=f"{document_id}{CHUNK_ID_SEPARATOR}{c.index}",
                document_id=document_id,
                chunk_index=c.index,
                text=c.text,
                vector=vector,
                metadata=meta,
            )
            for c, vector in zip(chunks, vectors, strict=True)
        ]
        self.store.ensure_collection(collection, int(vectors.shape[1]))
        replaced = self.store.replace_documents(collection, points)
        return IndexDocumentResult(
            collection=collection,
            document_id=document_id,
            chunks=len(points),
            replaced=replaced,
            chunk_size=chunk_size,
            chunk_overlap=effective_overlap(chunk_size, chunk_overlap),
            model=self.embeddings.model,
            provider=self.embeddings.provider,
        )

    def search(
        self,
        query: str,
        collection: str = DEFAULT_COLLECTION,
        top_k: int = 5,
        score_threshold: float | None = 0.0,
        filter: Mapping[str, MetadataValue] | None = None,
    ) -> SearchOutcome:
        """Nearest chunks to the query; NotFound for an unknown collection."""
        query = self._text(query, "query")
        results, _ = self._retrieve(query, collection, top_k, score_threshold, filter)
        return self._search_outcome(query, collection, results)

    @property
    def awaitable(self) -> bool:
        """Whether ``search_async`` awaits the embedding without a thread (the local model)."""
        return isinstance(self.embeddings, AwaitableEmbeddingProvider)

    async def search_async(
        self,
        query: str,
        collection: str = DEFAULT_COLLECTION,
        top_k: int = 5,
        score_threshold: float | None = 0.0,
        filter: Mapping[str, MetadataValue] | None = None,
    ) -> SearchOutcome:
        """``search`` for asyncio callers: the embedding is awaited on the event loop (its
        queue fills batches as the embeddings endpoints' does) and only the store's calls
        take a thread.

        In a thread for the whole search, the request's thread woke from the model's batch
        and waited for the GIL before its store call could start: at 64 connections the
        batches stayed at ~5-8 texts (~18 for embeddings/generate) with the model busy.
        """
        query = self._text(query, "query")
        if collection not in self._found:  # check it before paying for an embedding
            await asyncio.to_thread(self.store.collection_dimensions, collection)
        vector = (await embed_async(self.embeddings, [query])).vectors[0]
        results = await asyncio.to_thread(
            self._search_vector, collection, vector, top_k, score_threshold, filter
        )
        return self._search_outcome(query, collection, results)

    def _search_outcome(
        self, query: str, collection: str, results: list[ScoredPoint]
    ) -> SearchOutcome:
        return SearchOutcome(
            query=query,
            collection=collection,
            results=results,
            total=len(results),
            model=self.embeddings.model,
            provider=self.embeddings.provider,
        )

    def query(
        self,
        query: str,
        collection: str = DEFAULT_COLLECTION,
        top_k: int = 5,
        score_threshold: float | None = 0.0,
        filter: Mapping[str, MetadataValue] | None = None,
        *,
        model: str | None = None,
        system_prompt: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> QueryOutcome:
        """Retrieve, then answer with the LLM if one is configured, else extractively.

        With no sources nothing is sent to the LLM (there is nothing to ground an answer
        in): the answer says so and is labelled extractive.
        """
        query = self._text(query, "query")
        sources, vector = self._retrieve(query, collection, top_k, score_threshold, filter)
        if not sources:
            return self._extractive(answering.no_sources_answer(collection), sources)
        if self.llm is None:
            answer = answering.extractive_answer(vector, sources, self._embed)
            return self._extractive(answer, sources)
        system = clean_text(system_prompt or "") or answering.DEFAULT_SYSTEM_PROMPT
        window = self.llm.context_window
        if window is None:
            prompt = answering.build_prompt(query, sources, self.llm.max_context_chars)
        else:
            fitted = answering.fit_prompt(
                query, sources, system, window, max_tokens, self.llm.max_context_chars
            )
            prompt, max_tokens = fitted.prompt, fitted.max_tokens
        completion = self.llm.complete(
            prompt, system=system, model=model, max_tokens=max_tokens, temperature=temperature
        )
        return QueryOutcome(
            answer=answering.cite_sources(completion.text, sources, self._embed),
            sources=sources,
            model=completion.model,
            provider=completion.provider,
            usage=completion.usage,
        )

    def delete_collection(self, name: str) -> DeleteCollectionResult:
        self._found.discard(name)
        return DeleteCollectionResult(name=name, chunks_deleted=self.store.delete_collection(name))

    def list_collections(self) -> list[CollectionInfo]:
        return self.store.list_collections()

    def stats(self) -> RagStats:
        totals = self.store.stats()
        return RagStats(
            collections=totals.collections,
            documents=totals.documents,
            chunks=totals.chunks,
            queries=totals.queries,
            vector_store=self.store.kind,
            embedding_model=self.embeddings.model,
            per_collection=totals.per_collection,
        )

    def _retrieve(
        self,
        query: str,
        collection: str,
        top_k: int,
        score_threshold: float | None,
        filter: Mapping[str, MetadataValue] | None,
    ) -> tuple[list[ScoredPoint], npt.NDArray[np.float32]]:
        if collection not in self._found:  # check it before paying for an embedding
            self.store.collection_dimensions(collection)
        vector = self._embed([query])[0]
        return self._search_vector(collection, vector, top_k, score_threshold, filter), vector

    def _search_vector(
        self,
        collection: str,
        vector: npt.NDArray[np.float32],
        top_k: int,
        score_threshold: float | None,
        filter: Mapping[str, MetadataValue] | None,
    ) -> list[ScoredPoint]:
        """The store's search, counted; remembers the collection as found, or forgets it."""
        try:
            hits = self.store.search(
                collection, vector, top_k, score_threshold, filter, record=True
            )
        except NotFound:
            self._found.discard(collection)
            raise
        if len(self._found) >= _MAX_FOUND:
            self._found.clear()
        self._found.add(collection)
        return hits

    def _extractive(self, answer: str, sources: list[ScoredPoint]) -> QueryOutcome:
        # The sentences are ranked with the embedding model, so it is the model named.
        return QueryOutcome(
            answer=answer,
            sources=sources,
            model=self.embeddings.model,
            provider=EXTRACTIVE_PROVIDER,
            usage=None,
        )

    def _embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return self.embeddings.embed(list(texts)).vectors

    @staticmethod
    def _text(text: str, *loc: str | int) -> str:
        cleaned = clean_text(text)
        if not cleaned.strip():
            field = ".".join(map(str, loc))
            detail = {"loc": ["body", *loc], "message": "blank text", "type": "blank_text"}
            raise InvalidInput(
                f"{field} must contain at least one non-space character", details=[detail]
            )
        return cleaned
