"""The local embedding model and the embedding service, on the real ONNX model (offline)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from backends.core.embeddings.local import LOCAL_MODEL_ID, TOKENIZER_PATH, LocalMiniLMProvider
from backends.core.embeddings.registry import (
    EmbeddingRegistry,
    available_models,
    build_embedding_provider,
)
from backends.core.embeddings.service import EmbeddingService
from backends.core.errors import InvalidInput, ProviderUnavailable, UnknownModel
from backends.core.inference.runtime import InferenceRuntime
from tests.core.engine_fixtures import (
    SECRET_KEY,
    analysis_service,
    embedding_service,
    engine_settings,
    registry,
)

__all__ = ["analysis_service", "embedding_service", "registry"]

# (query, its paraphrase): each query must rank its own paraphrase first among all documents.
PAIRS = [
    ("How do I reset my password?", "Steps to recover access when you forgot your login password"),
    ("What is the capital of France?", "Paris is the French capital city."),
    ("best way to cook pasta", "Boil spaghetti in salted water for about ten minutes."),
    ("symptoms of the flu", "Influenza usually causes fever, chills, a cough and aching muscles."),
    ("how to change a flat tire", "Replacing a punctured car wheel with the spare one"),
    ("cheap flights to Tokyo", "Low-cost airline tickets to Japan's capital"),
    ("python list sorting", "Ordering the elements of a Python list with sorted() or list.sort()"),
    ("when did World War II end", "The Second World War came to a close in 1945."),
    ("how to train a puppy", "Tips for teaching a young dog to obey commands"),
    ("stock market crash", "Share prices collapsed sharply across the exchange."),
]
DISTRACTORS = [
    "The quarterly report shows revenue growth in the cloud division.",
    "A recipe for chocolate chip cookies with brown butter.",
    "The orchestra performed Beethoven's ninth symphony last night.",
    "Glaciers in the Alps are retreating faster than expected.",
    "The new museum wing displays ancient Egyptian artefacts.",
    "Our office will be closed on the public holiday.",
    "She painted the fence white over the weekend.",
    "The football season starts in August.",
]


def test_vectors_have_384_dimensions_and_unit_norm(registry: EmbeddingRegistry) -> None:
    batch = registry.local.embed(["A short sentence.", "Another, somewhat longer sentence here."])
    assert batch.vectors.shape == (2, 384)
    assert batch.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch.vectors, axis=1), 1.0, atol=1e-5)
    # [CLS] + words + [SEP]: at least 5 real tokens each, padding never counted
    assert 10 <= batch.prompt_tokens <= 30


def test_each_query_ranks_its_paraphrase_first(registry: EmbeddingRegistry) -> None:
    provider = registry.local
    queries = provider.embed([q for q, _ in PAIRS]).vectors
    documents = provider.embed([d for _, d in PAIRS] + DISTRACTORS).vectors
    best = (queries @ documents.T).argmax(axis=1)
    assert best.tolist() == list(range(len(PAIRS)))


def test_batch_equals_individual_embeddings(registry: EmbeddingRegistry) -> None:
    texts = [q for q, _ in PAIRS] + DISTRACTORS
    together = registry.local.embed(texts).vectors
    one_by_one = np.stack([registry.local.embed([t]).vectors[0] for t in texts])
    np.testing.assert_allclose(together, one_by_one, atol=1e-4)


def test_long_text_is_truncated_not_rejected(registry: EmbeddingRegistry) -> None:
    batch = registry.local.embed(["word " * 2000])
    assert batch.prompt_tokens == 256  # truncation at 256, including [CLS] and [SEP]
    assert np.isfinite(batch.vectors).all()


def test_model_is_loaded_once_and_lazily() -> None:
    provider = LocalMiniLMProvider(InferenceRuntime(engine_settings()))
    assert not provider.loaded
    provider.embed(["hello"])
    first = provider.onnx.load()
    provider.embed(["again"])
    assert provider.loaded and provider.onnx.load() is first


def test_concurrent_first_use_loads_once_and_agrees() -> None:
    """The backends call from many threads: racing first calls must share one model."""
    provider = LocalMiniLMProvider(InferenceRuntime(engine_settings()))
    texts = [q for q, _ in PAIRS]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(
            pool.map(lambda t: (provider.embed([t]).vectors[0], provider.onnx.load()), texts)
        )
    assert len({id(loaded) for _, loaded in results}) == 1
    np.testing.assert_allclose(
        np.stack([v for v, _ in results]), provider.embed(texts).vectors, atol=1e-4
    )


def test_tokenizer_file_ships_with_its_licence() -> None:
    folder = TOKENIZER_PATH.parent
    assert TOKENIZER_PATH.stat().st_size == 466_247
    assert "Apache License" in (folder / "LICENSE").read_text()
    assert "all-MiniLM-L6-v2" in (folder / "NOTICE").read_text()


def test_service_generate(embedding_service: EmbeddingService) -> None:
    result = embedding_service.generate("Embeddings map text to vectors.")
    assert result.dimensions == len(result.embedding) == 384
    assert (result.model, result.provider) == (LOCAL_MODEL_ID, "local")
    assert result.usage.prompt_tokens == result.usage.total_tokens > 2
    assert abs(float(np.linalg.norm(result.embedding)) - 1.0) < 1e-5


def test_service_batch_matches_generate(embedding_service: EmbeddingService) -> None:
    texts = ["first text", "a second, longer text about something else", "third"]
    result = embedding_service.batch(texts, model=LOCAL_MODEL_ID)
    assert result.count == 3 and result.dimensions == 384
    single = embedding_service.generate(texts[1]).embedding
    np.testing.assert_allclose(result.embeddings[1], single, atol=1e-4)


def test_similarity_paraphrase_beats_unrelated(embedding_service: EmbeddingService) -> None:
    text = "The cat is sleeping on the sofa."
    scores = embedding_service.similarity(
        text, ["A kitten naps on the couch.", "Interest rates rose again this quarter."]
    ).similarity
    assert isinstance(scores, list)
    assert scores[0] > 0.5 > scores[1]
    assert all(-1.0 <= s <= 1.0 for s in scores)
    single = embedding_service.similarity(text, "A kitten naps on the couch.").similarity
    assert isinstance(single, float) and single == pytest.approx(scores[0], abs=1e-4)


def test_blank_or_empty_input_is_invalid(embedding_service: EmbeddingService) -> None:
    with pytest.raises(InvalidInput):
        embedding_service.generate("   ")
    with pytest.raises(InvalidInput):
        embedding_service.batch([])
    with pytest.raises(InvalidInput):
        embedding_service.similarity("text", [])


def test_model_resolution(registry: EmbeddingRegistry) -> None:
    assert registry.resolve(None).model == LOCAL_MODEL_ID
    assert registry.resolve(LOCAL_MODEL_ID) is registry.local
    with pytest.raises(ProviderUnavailable, match="OPENAI_API_KEY"):
        registry.resolve("text-embedding-3-small")
    with pytest.raises(UnknownModel, match="all-MiniLM-L6-v2") as info:
        registry.resolve("no-such-model")
    assert info.value.status_code == 404


def test_models_list_flags_availability() -> None:
    keyless = {m.id: m for m in available_models(engine_settings())}
    assert keyless[LOCAL_MODEL_ID].available and keyless[LOCAL_MODEL_ID].default
    assert keyless[LOCAL_MODEL_ID].dimensions == 384
    assert not keyless["text-embedding-3-small"].available
    assert keyless["text-embedding-3-large"].dimensions == 3072

    keyed = available_models(
        engine_settings(
            openai_api_key=SECRET_KEY, embedding_provider="openai", embedding_dimensions=512
        )
    )
    by_id = {m.id: m for m in keyed}
    assert by_id["text-embedding-3-small"].available and by_id["text-embedding-3-small"].default
    assert by_id["text-embedding-3-small"].dimensions == 512  # shortened default model
    assert not by_id[LOCAL_MODEL_ID].default
    assert sum(m.default for m in keyed) == 1


def test_openai_default_without_key_is_unavailable() -> None:
    with pytest.raises(ProviderUnavailable, match="OPENAI_API_KEY"):
        build_embedding_provider(engine_settings(embedding_provider="openai"))
    assert build_embedding_provider(engine_settings()).model == LOCAL_MODEL_ID
