"""The price table: credits per request and per metered unit, keyed by operation id.

The defaults start from the peer gateway's credit table (its flat price per endpoint and
per extra item of a batch), mapped onto our operation ids; the units it declared but
never charged (tokens) and audio seconds are priced here. ``CREDITS_PRICES`` replaces
whole entries (JSON, ``{"embeddings_batch": {"request": "5", "item": "0.1"}}``); the
other settings price cache hits, failed requests and the per-request cap.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared_schemas.operations import MeterUnit


class Price(BaseModel):
    """Credits of one operation: a flat price per request plus a price per unit."""

    model_config = ConfigDict(extra="forbid", frozen=True)  # a misspelt unit fails start-up

    request: Decimal = Field(default=Decimal(0), ge=0)
    item: Decimal = Field(default=Decimal(0), ge=0)  # per item beyond the first (as the peer)
    input_tokens_1k: Decimal = Field(default=Decimal(0), ge=0)  # per 1,000 prompt tokens
    generated_token: Decimal = Field(default=Decimal(0), ge=0)  # per completion token
    audio_second: Decimal = Field(default=Decimal(0), ge=0)  # per second of audio

    def units(self) -> set[MeterUnit]:
        """The metered units this price charges for (a non-zero price)."""
        priced: dict[MeterUnit, Decimal] = {
            "item": self.item,
            "input_token": self.input_tokens_1k,
            "generated_token": self.generated_token,
            "audio_second": self.audio_second,
        }
        return {unit for unit, price in priced.items() if price}


def _p(request: str, **units: str) -> Price:
    return Price(request=Decimal(request), **{k: Decimal(v) for k, v in units.items()})


FREE = Price()
# Probes and listings of constants are free; everything else follows the peer's table
# where it has the endpoint, else its default of 1 credit.
DEFAULT_PRICES: dict[str, Price] = {
    "health_status": FREE,
    "health_ready": FREE,
    "health_live": FREE,
    "embeddings_generate": _p("2"),
    "embeddings_batch": _p("5", item="0.1"),
    "embeddings_similarity": _p("1"),
    "embeddings_models": _p("1"),
    "rag_index": _p("2", item="0.2"),  # the peer's ingest (2) and batch-ingest (+0.2 per item)
    "rag_index_document": _p("2"),
    "rag_search": _p("3"),
    # the peer's 0.001 per token, declared there, charged here on generated tokens
    "rag_query": _p("3", input_tokens_1k="1", generated_token="0.001"),
    "rag_collections": _p("1"),
    "rag_delete_collection": _p("1"),
    "rag_stats": _p("1"),
    "analysis_analyze": _p("5"),  # sentiment + summary + keywords in one call
    "analysis_generate": _p("4", input_tokens_1k="1", generated_token="0.001"),
    "analysis_classify": _p("3"),
    "analysis_summarize": _p("5"),
    "analysis_sentiment": _p("3"),
    "analysis_keywords": _p("1"),
    "complexity_pre_estimate": _p("3"),
    "complexity_post_analyze": _p("4"),
    "complexity_scale": _p("1"),
    "complexity_calculate_adjustment": _p("1"),
    "complexity_health": FREE,
    # the peer charged a flat 10 whatever the length; here 3 credits per minute of audio
    "transcription_transcribe": _p("2", audio_second="0.05"),
    "transcription_transcribe_base64": _p("2", audio_second="0.05"),
    "transcription_convert": _p("5"),
    "transcription_estimate_cost": _p("1"),
    "transcription_formats": _p("1"),
    "transcription_languages": _p("1"),
    "transcription_health": FREE,
}


class CreditSettings(BaseSettings):
    """Prices read by every backend (unprefixed by backend: both must charge the same)."""

    model_config = SettingsConfigDict(
        env_prefix="CREDITS_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    # whole entries replacing the defaults, by operation id (JSON)
    prices: dict[str, Price] = Field(default_factory=dict)
    # a cached answer ran no model: this fraction of the request and item price, no units
    cache_hit_fraction: Decimal = Field(default=Decimal("0.1"), ge=0, le=1)
    # any answer with status >= 400, whatever failed
    failed_request: int = Field(default=0, ge=0)
    # the most one request costs (the peer's cap); 0: no cap
    max_per_request: int = Field(default=100, ge=0)

    def price_table(self) -> dict[str, Price]:
        """The defaults with ``prices`` applied."""
        return {**DEFAULT_PRICES, **self.prices}
