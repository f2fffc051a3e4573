"""A batch folds into one usage delta per daily row: several endpoints of one group and
the same user add up in one row; another user, another group or a shadow copy do not."""

from __future__ import annotations

from backends.core.persistence.records import RequestRecord, aggregate_usage


def _record(
    endpoint: str, status: int = 200, user: str | None = "u1", **extra: object
) -> RequestRecord:
    return RequestRecord.build(
        service_name="fastapi", endpoint=endpoint, method="POST", status_code=status,
        duration_ms=10.0, request_id="r", user_id=user, credits_charged=2, **extra,
    )  # fmt: skip


def test_endpoints_of_one_group_add_up_in_one_daily_row() -> None:
    records = [
        _record("/api/v1/embeddings/generate"),
        _record("/api/v1/embeddings/batch", status=422),
        _record("/api/v1/embeddings/generate"),
        _record("/api/v1/rag/search"),
        _record("/api/v1/embeddings/generate", user="u2"),
        _record("/api/v1/embeddings/generate", shadow=True),
        _record("/live"),
    ]
    deltas = {
        (key.user_id, key.endpoint_category): (
            d.requests,
            d.credits,
            d.duration_ms,
            d.successes,
            d.errors,
        )
        for key, d in aggregate_usage(records).items()
    }
    assert deltas == {
        ("u1", "embeddings"): (3, 6, 30.0, 2, 1),
        ("u1", "rag"): (1, 2, 10.0, 1, 0),
        ("u2", "embeddings"): (1, 2, 10.0, 1, 0),
        ("u1", "other"): (1, 2, 10.0, 1, 0),
    }
