"""Rows of the shared tables, built the same way by every backend."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from backends.core.persistence.categories import endpoint_category
from backends.core.persistence.sanitize import EncodedJson, sanitize_payload
from shared_schemas import fresh_ids

INT4_MAX = 2**31 - 1  # ml_service_requests.credits_charged
INT8_MAX = 2**63 - 1  # ml_service_usage.total_credits (bigint since migration 0002)

# varchar sizes of ml_service_requests: a longer header value must not poison a batch
_COLUMN_LIMITS = {
    "user_id": 128,
    "organization_id": 128,
    "service_name": 32,
    "endpoint": 255,
    "method": 10,
    "request_id": 128,
    "user_agent": 512,
    "error_message": 2000,
    "api_key_id": 64,
}


@dataclass(slots=True)  # not frozen: a frozen init costs a setattr call per field, per request
class RequestRecord:
    """One ml_service_requests row (built once by ``build``, never changed after)."""

    service_name: str
    endpoint: str
    method: str
    status_code: int
    duration_ms: float
    request_id: str
    request_payload: Any = None
    response_payload: Any = None
    error_message: str | None = None
    user_id: str | None = None
    organization_id: str | None = None
    credits_charged: int = 0
    ip_address: str | None = None
    user_agent: str | None = None
    api_key_id: str | None = None
    # mirrored by the gateway's shadow mode: logged, but no usage and no credits
    shadow: bool = False
    id: uuid.UUID = field(default_factory=fresh_ids.new_uuid)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def build(cls, **values: Any) -> RequestRecord:
        """A record whose payloads are already sanitised (secrets, audio, NULs, size)."""
        for name in ("request_payload", "response_payload"):
            value = values.get(name)
            # an EncodedJson is sanitize_payload's own result (log_notes keeps those)
            if value is not None and type(value) is not EncodedJson:
                values[name] = sanitize_payload(value)
        # an integer column: a huge header value must not poison a batch either
        values["credits_charged"] = min(max(int(values.get("credits_charged", 0)), 0), INT4_MAX)
        for name, limit in _COLUMN_LIMITS.items():
            value = values.get(name)
            if value is None:
                continue
            if type(value) is not str:
                value = values[name] = str(value)
            if len(value) > limit or "\x00" in value:  # most values fit: no copy made
                values[name] = value.replace("\x00", "")[:limit]
        return cls(**values)

    @property
    def usage_key(self) -> UsageKey:
        return UsageKey(
            user_id=self.user_id,
            organization_id=self.organization_id,
            date=self.created_at.date(),
            service_name=self.service_name,
            endpoint_category=endpoint_category(self.endpoint),
        )


@dataclass(frozen=True)
class UsageKey:
    user_id: str | None
    organization_id: str | None
    date: date
    service_name: str
    endpoint_category: str


@dataclass
class UsageDelta:
    """What a batch of requests adds to one ml_service_usage row."""

    requests: int = 0
    credits: int = 0
    duration_ms: float = 0.0
    successes: int = 0
    errors: int = 0


def aggregate_usage(records: list[RequestRecord]) -> dict[UsageKey, UsageDelta]:
    """Fold a batch into one delta per daily usage row (one upsert per row, not per request).

    Rows are first grouped by a plain tuple of the columns the key is made of (the
    endpoint, not yet its category): a tuple hashes and compares in C, where a
    ``UsageKey`` per row cost a dataclass init, hash and ``__eq__`` in Python.
    """
    by_columns: dict[tuple[Any, ...], UsageDelta] = {}
    for record in records:
        if record.shadow:  # a copy of a request already counted on the primary
            continue
        columns = (
            record.user_id, record.organization_id, record.created_at.date(),
            record.service_name, record.endpoint,
        )  # fmt: skip
        delta = by_columns.get(columns)
        if delta is None:
            delta = by_columns[columns] = UsageDelta()
        delta.requests += 1
        delta.credits += record.credits_charged
        delta.duration_ms += record.duration_ms
        if record.status_code < 400:
            delta.successes += 1
        else:
            delta.errors += 1
    deltas: dict[UsageKey, UsageDelta] = {}
    for (user_id, organization_id, day, service_name, endpoint), part in by_columns.items():
        key = UsageKey(user_id, organization_id, day, service_name, endpoint_category(endpoint))
        total = deltas.get(key)
        if total is None:
            deltas[key] = part
            continue
        total.requests += part.requests
        total.credits += part.credits
        total.duration_ms += part.duration_ms
        total.successes += part.successes
        total.errors += part.errors
    return deltas


def request_params(record: RequestRecord) -> tuple[Any, ...]:
    """Parameters of sql.INSERT_REQUEST, in order (payloads stay Python objects)."""
    return (
        record.id, record.user_id, record.organization_id, record.service_name,
        record.endpoint, record.method, record.request_payload, record.response_payload,
        record.status_code, record.error_message, record.duration_ms, record.credits_charged,
        record.ip_address, record.user_agent, record.request_id, record.created_at,
        record.api_key_id, record.shadow,
    )  # fmt: skip


def usage_params(key: UsageKey, delta: UsageDelta) -> tuple[Any, ...]:
    """Parameters of sql.UPSERT_USAGE, in order (credits saturate at the column's limit)."""
    return (
        key.user_id, key.organization_id, key.date, key.service_name, key.endpoint_category,
        delta.requests, min(delta.credits, INT8_MAX), delta.duration_ms,
        delta.duration_ms / max(delta.requests, 1), delta.successes, delta.errors,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class CacheRow:
    """One ml_service_cache upsert; ``body`` is the exact JSON text served (UTF-8)."""

    key: str
    request_hash: str
    endpoint: str
    service_name: str
    body: bytes
    ttl_s: int

    @property
    def storable(self) -> bool:
        """Whether jsonb can hold the body: it refuses the NUL escape in a string."""
        return b"\\u0000" not in self.body


def cache_params(row: CacheRow) -> tuple[Any, ...]:
    """Parameters of sql.UPSERT_CACHE, in order: the body goes as text, parsed by Postgres
    (no json.loads and dumps again in the backend; the statement casts it)."""
    return (
        row.key, row.request_hash, row.endpoint, row.service_name, row.body.decode(),
        float(row.ttl_s), len(row.body),
    )  # fmt: skip


def usage_upserts(records: list[RequestRecord]) -> list[tuple[Any, ...]]:
    """sql.UPSERT_USAGE parameters for a batch, one per daily row, in a fixed order
    (concurrent writers taking row locks in the same order cannot deadlock)."""
    deltas = sorted(aggregate_usage(records).items(), key=lambda item: repr(item[0]))
    return [usage_params(key, delta) for key, delta in deltas]
