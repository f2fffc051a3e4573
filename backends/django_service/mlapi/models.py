"""The shared tables. This app owns their only migration history; the FastAPI backend
reads and writes the same tables with asyncpg and refuses to start while migrations are
pending. Database-side defaults (``db_default``) keep raw-SQL writers consistent."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.functions import RandomUUID
from django.db import models
from django.db.models.functions import Now

from backends.core.persistence.categories import OTHER
from shared_schemas.operations import API_GROUPS

ENDPOINT_CATEGORIES = [(c, c) for c in (*API_GROUPS, OTHER)]


class ServiceRequest(models.Model):
    """One row per API request served by any backend (secrets and audio stripped)."""

    id = models.UUIDField(primary_key=True, db_default=RandomUUID(), editable=False)
    user_id = models.CharField(max_length=128, null=True, blank=True)
    organization_id = models.CharField(max_length=128, null=True, blank=True)
    service_name = models.CharField(max_length=32)
    endpoint = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    request_payload = models.JSONField(null=True, blank=True)
    response_payload = models.JSONField(null=True, blank=True)
    status_code = models.IntegerField()
    error_message = models.TextField(null=True, blank=True)
    duration_ms = models.FloatField()
    credits_charged = models.IntegerField(db_default=0)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.TextField(null=True, blank=True)
    request_id = models.CharField(max_length=128)
    # the key the gateway authenticated (ml_api_keys.id, or a static key's digest prefix)
    api_key_id = models.CharField(max_length=64, null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "ml_service_requests"
        indexes = [
            models.Index(fields=["api_key_id", "created_at"], name="ml_req_key_created_idx"),
            models.Index(fields=["organization_id", "created_at"], name="ml_req_org_created_idx"),
            models.Index(fields=["user_id", "created_at"], name="ml_req_user_created_idx"),
            models.Index(fields=["endpoint"], name="ml_req_endpoint_idx"),
            models.Index(fields=["service_name"], name="ml_req_service_idx"),
            models.Index(fields=["created_at"], name="ml_req_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.endpoint} {self.status_code} ({self.service_name})"


class ServiceUsage(models.Model):
    """Daily aggregates, upserted atomically (INSERT ... ON CONFLICT DO UPDATE)."""

    user_id = models.CharField(max_length=128, null=True, blank=True)
    organization_id = models.CharField(max_length=128, null=True, blank=True)
    date = models.DateField()
    service_name = models.CharField(max_length=32)
    endpoint_category = models.CharField(max_length=32, choices=ENDPOINT_CATEGORIES)
    total_requests = models.IntegerField(db_default=0)
    # bigint: a day of one user's credits can exceed int4 (2,147,483,647), and an overflow
    # there made Postgres refuse every later log batch of that user for the rest of the day
    total_credits = models.BigIntegerField(db_default=0)
    total_duration_ms = models.FloatField(db_default=0.0)
    avg_duration_ms = models.FloatField(db_default=0.0)
    success_count = models.IntegerField(db_default=0)
    error_count = models.IntegerField(db_default=0)
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "ml_service_usage"
        constraints = [
            models.UniqueConstraint(
                fields=["user_id", "organization_id", "date", "service_name", "endpoint_category"],
                name="ml_usage_day_key",
                nulls_distinct=False,  # anonymous traffic aggregates into one row per day
            )
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.service_name}/{self.endpoint_category}: {self.total_requests}"


BUDGET_PERIODS = [("day", "day"), ("month", "month")]


class ApiKey(models.Model):
    """A gateway API key, bound to a user and an organisation. Only its SHA-256 is stored.

    Written by the gateway's CLI (``python -m gateway keys``) and read by the gateway with
    asyncpg; ``scopes`` are route groups (shared_schemas.operations.API_GROUPS) or "admin".
    """

    id = models.UUIDField(primary_key=True, db_default=RandomUUID(), editable=False)
    key_hash = models.CharField(max_length=64, unique=True)  # hex SHA-256 of the whole key
    prefix = models.CharField(max_length=16)  # the key's public start, for lists and logs
    name = models.CharField(max_length=128)
    user_id = models.CharField(max_length=128)
    organization_id = models.CharField(max_length=128)
    scopes = ArrayField(models.CharField(max_length=32))
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "ml_api_keys"
        indexes = [models.Index(fields=["organization_id"], name="ml_key_org_idx")]

    def __str__(self) -> str:
        return f"{self.prefix}... {self.name} ({self.organization_id})"


class CreditBudget(models.Model):
    """A credit budget per period for one key or one organisation, enforced by the gateway."""

    subject_kind = models.CharField(
        max_length=16, choices=[("key", "key"), ("organization", "organization")]
    )
    subject_id = models.CharField(max_length=128)  # ml_api_keys.id or an organization_id
    period = models.CharField(max_length=8, choices=BUDGET_PERIODS)
    credits = models.BigIntegerField()
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "ml_credit_budgets"
        constraints = [
            models.UniqueConstraint(fields=["subject_kind", "subject_id"], name="ml_budget_key"),
            models.CheckConstraint(condition=models.Q(credits__gte=0), name="ml_budget_credits"),
        ]

    def __str__(self) -> str:
        return f"{self.subject_kind} {self.subject_id}: {self.credits}/{self.period}"


class ResponseCache(models.Model):
    """Deterministic, successful responses; valid across backends (keys ignore the backend)."""

    cache_key = models.CharField(max_length=128, unique=True)
    request_hash = models.CharField(max_length=64)
    endpoint = models.CharField(max_length=255)
    service_name = models.CharField(max_length=32)
    response_data = models.JSONField()
    expires_at = models.DateTimeField()
    hit_count = models.IntegerField(db_default=0)
    last_hit_at = models.DateTimeField(null=True, blank=True)
    size_bytes = models.IntegerField()
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "ml_service_cache"
        indexes = [models.Index(fields=["expires_at"], name="ml_cache_expires_idx")]

    def __str__(self) -> str:
        return f"{self.endpoint} {self.cache_key[:12]} hits={self.hit_count}"


class ComplexitySample(models.Model):
    """Estimate vs actual pairs from post-analyze; calibrates later pre-estimates."""

    task_type = models.CharField(max_length=32)
    pre_score = models.FloatField()
    actual_score = models.FloatField()
    service_name = models.CharField(max_length=32)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "ml_complexity_samples"
        indexes = [models.Index(fields=["task_type", "created_at"], name="ml_cx_type_idx")]

    def __str__(self) -> str:
        return f"{self.task_type}: {self.pre_score} -> {self.actual_score}"


class BillingExport(models.Model):
    """One usage slice (organisation x day x category) sent to Stripe, or being sent.

    Written by ``python -m billing export``: a row is ``pending`` (committed before the
    meter event is sent) until Stripe acknowledged it, then ``sent``. A pending row is
    sent again with the same identifier and value, so a crash between the two never
    bills twice (Stripe drops a repeated identifier) and never loses a slice.
    """

    identifier = models.CharField(max_length=100, primary_key=True)  # the event's identifier
    organization_id = models.CharField(max_length=128)
    date = models.DateField()
    endpoint_category = models.CharField(max_length=32, choices=ENDPOINT_CATEGORIES)
    stripe_customer_id = models.CharField(max_length=255)
    credits = models.BigIntegerField()
    state = models.CharField(max_length=8, choices=[("pending", "pending"), ("sent", "sent")])
    created_at = models.DateTimeField(db_default=Now())
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "ml_billing_export"
        constraints = [
            models.UniqueConstraint(
                fields=["organization_id", "date", "endpoint_category"],
                name="ml_billing_slice_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.organization_id}/{self.endpoint_category}: {self.credits}"
