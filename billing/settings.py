"""Typed settings of the billing export (built by its CLI, never at import time)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class BillingSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BILLING_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    # a secret: only ever handed to the Stripe client, never printed (repr hides it)
    stripe_api_key: SecretStr | None = Field(default=None, validation_alias="STRIPE_API_KEY")
    stripe_max_network_retries: int = Field(
        default=2, ge=0, le=10, validation_alias="STRIPE_MAX_NETWORK_RETRIES"
    )
    # the meter's event_name in Stripe (Billing > Meters)
    meter_event_name: str = Field(default="ml_api_credits", min_length=1, max_length=100)
    # organisation id -> Stripe customer id; an unmapped organisation's usage waits
    customers: dict[str, str] = Field(default_factory=dict)
    # a day is closed this long after its end (UTC), so rows buffered late land first
    settle_minutes: int = Field(default=60, ge=0, le=7 * 24 * 60)
    # the default --since: Stripe rejects events older than 35 days
    lookback_days: int = Field(default=35, ge=1, le=35)
