"""Which provider/model would answer a request, for operations whose answer is deterministic.

A cache key includes this identity, so a cached response is reused only while the same
model would produce it. Hosted providers (OpenAI-compatible) are never cached: their
answers are not guaranteed to repeat. Nothing here loads a model.
"""

from __future__ import annotations

from collections.abc import Callable

from backends.core.analysis.keywords import YakeKeywords
from backends.core.analysis.sentiment import VaderSentiment
from backends.core.analysis.service import ALL_ANALYSES, CLASSIFY_PREFIX, SUMMARY_PREFIX
from backends.core.api.api_request import ApiRequest
from backends.core.embeddings.local import LOCAL_MODEL_ID
from backends.core.embeddings.registry import EmbeddingRegistry
from shared_schemas import analysis as an
from shared_schemas.operations import OPERATIONS

LOCAL = "local"
ModelRule = Callable[[str | None], str | None]
IdentityRule = Callable[[ApiRequest], str | None]


class CacheIdentities:
    """Answers ``identity(api_request)`` from the engine's configuration alone."""

    def __init__(self, registry: EmbeddingRegistry) -> None:
        self._registry = registry
        # Model names carry the package versions (e.g. "vader-3.3.2"): an upgrade is a new key.
        self._sentiment_model = VaderSentiment().model
        self._keywords_model = YakeKeywords().model
        # One rule per cacheable operation; most read the request's optional `model`.
        self._rules: dict[str, IdentityRule] = {
            "embeddings_generate": self._by_model(self._embedding),
            "embeddings_batch": self._by_model(self._embedding),
            "embeddings_similarity": self._by_model(self._embedding),
            "analysis_sentiment": self._by_model(self._sentiment),
            "analysis_keywords": self._by_model(self._keywords),
            "analysis_summarize": self._by_model(self._summary),
            "analysis_classify": self._by_model(self._classify),
            "analysis_analyze": lambda request: self._analyze(request.body_as(an.AnalyzeRequest)),
        }
        cacheable = {op.operation_id for op in OPERATIONS if op.cacheable}
        if cacheable != self._rules.keys():
            missing, extra = cacheable - set(self._rules), set(self._rules) - cacheable
            raise RuntimeError(
                f"cacheable operations without an identity rule: {sorted(missing)}; "
                f"identity rules of operations that are not cacheable: {sorted(extra)}"
            )

    def identity(self, api_request: ApiRequest) -> str | None:
        rule = self._rules.get(api_request.operation.operation_id)
        return rule(api_request) if rule is not None else None

    @staticmethod
    def _by_model(rule: ModelRule) -> IdentityRule:
        def identity(api_request: ApiRequest) -> str | None:
            model = getattr(api_request.body, "model", None)
            return rule(model if isinstance(model, str) else None)

        return identity

    def _local_embedding_model(self, model: str | None, prefix: str = "") -> str | None:
        """The local model id when ``model`` resolves to it, else None (hosted or unknown)."""
        if model is None:
            model_id = self._registry.default_model
        else:
            model_id = model.strip().removeprefix(prefix)
        return model_id if model_id == LOCAL_MODEL_ID else None

    def _embedding(self, model: str | None) -> str | None:
        local = self._local_embedding_model(model)
        return f"{LOCAL}/{local}" if local else None

    def _fixed(self, model: str | None, own: str, alias: str) -> str | None:
        """Sentiment and keywords have one local model each, named in full or by alias."""
        if model is None or model.strip() in (own, alias):
            return own
        return None  # an unknown model is a 422, never cached

    def _sentiment(self, model: str | None) -> str | None:
        own = self._fixed(model, self._sentiment_model, "vader")
        return f"{LOCAL}/{own}" if own else None

    def _keywords(self, model: str | None) -> str | None:
        own = self._fixed(model, self._keywords_model, "yake")
        return f"{LOCAL}/{own}" if own else None

    def _summary_model(self, model: str | None) -> str | None:
        local = self._local_embedding_model(model, SUMMARY_PREFIX)
        return f"{SUMMARY_PREFIX}{local}" if local else None

    def _summary(self, model: str | None) -> str | None:
        name = self._summary_model(model)
        return f"{LOCAL}/{name}" if name else None

    def _classify(self, model: str | None) -> str | None:
        local = self._local_embedding_model(model, CLASSIFY_PREFIX)
        return f"{LOCAL}/{CLASSIFY_PREFIX}{local}" if local else None

    def _analyze(self, body: an.AnalyzeRequest) -> str | None:
        """Every requested analysis must be local; ``model`` only picks the summary's."""
        names: list[str] = []
        # The engine's order, the one its combined `model` field lists them in.
        for kind in (k for k in ALL_ANALYSES if k in body.analyses):
            if kind == "sentiment":
                names.append(self._sentiment_model)
            elif kind == "keywords":
                names.append(self._keywords_model)
            else:
                summary = self._summary_model(body.model)
                if summary is None:
                    return None
                names.append(summary)
        return f"{LOCAL}/{','.join(names)}"
