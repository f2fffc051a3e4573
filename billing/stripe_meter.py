"""Stripe billing meter events, sent with the official SDK over its HTTPX client.

The HTTPX client (not the SDK's default, requests) lets tests fake Stripe at the HTTP
layer with respx. The API key stays inside the client: nothing here formats it, and the
SDK's own log records (it logs response bodies at DEBUG and error messages at INFO) pass
a filter that blanks it. Its console logging (``STRIPE_LOG``) bypasses logging: leave
it unset.
"""

from __future__ import annotations

import logging

import stripe

from billing.slices import UsageSlice


class RedactSecret(logging.Filter):
    """Blanks one secret in every record of the logger it is attached to."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.secret and self.secret in message:
            record.msg, record.args = message.replace(self.secret, "[redacted]"), ()
        return True


class MeterEvents:
    """Sends one meter event per slice to the meter ``event_name``."""

    def __init__(self, api_key: str, event_name: str, *, max_network_retries: int) -> None:
        self._event_name = event_name
        stripe_log = logging.getLogger("stripe")
        if not any(isinstance(f, RedactSecret) and f.secret == api_key for f in stripe_log.filters):
            stripe_log.addFilter(RedactSecret(api_key))
        self._client = stripe.StripeClient(
            api_key,
            http_client=stripe.HTTPXClient(allow_sync_methods=True),
            max_network_retries=max_network_retries,
        )

    def send(self, usage: UsageSlice, customer: str, credits: int) -> None:
        """Record ``credits`` for ``customer``; raises ``stripe.StripeError`` on failure."""
        self._client.v1.billing.meter_events.create(
            params={
                "event_name": self._event_name,
                "identifier": usage.identifier,
                "timestamp": usage.timestamp,
                "payload": {"stripe_customer_id": customer, "value": str(credits)},
            }
        )
