"""What a request consumed (its meter reading) and the credits it costs.

The request flow reads the meter from the validated request and the handler's result
(items in the body, the result's token usage, the audio transcribed); the backend
settles the credits once the status is known, returns them as ``X-Credits-Charged`` and
writes them to the request-log row. Nothing here trusts what the client sent.

Rounding: the Decimal sum of the prices is rounded up to a whole credit (as the peer
does), then capped; a fraction of a credit is charged as one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from pydantic import BaseModel

from backends.core.api.api_request import ApiRequest, ApiResult, RawResult
from backends.core.metering.prices import CreditSettings, Price
from shared_schemas.common import Usage
from shared_schemas.operations import OPERATIONS

_THOUSAND = Decimal(1000)


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which made
# building one 2-3x slower here (~3 us vs ~1 us at load 7; one per request).
@dataclass(slots=True)
class MeterReading:
    """What one answered request consumed, from the request and the result themselves."""

    operation_id: str
    items: int = 1
    input_tokens: int = 0
    generated_tokens: int = 0
    audio_seconds: Decimal = Decimal(0)
    cache_hit: bool = False


def read_meter(api_request: ApiRequest, result: ApiResult | None) -> MeterReading:
    """The reading of a request answered with ``result`` (None: served from the cache)."""
    operation = api_request.operation
    units = operation.meter_units
    items = 1
    if "item" in units and operation.item_field is not None:
        items = _count(getattr(api_request.body, operation.item_field, None))
    if result is None:
        return MeterReading(operation.operation_id, items, cache_hit=True)
    usage = getattr(result, "usage", None) if isinstance(result, BaseModel) else None
    prompt, completion = (
        (usage.prompt_tokens, usage.completion_tokens) if isinstance(usage, Usage) else (0, 0)
    )
    seconds: object = None
    if "audio_second" in units:
        seconds = (
            result.audio_seconds
            if isinstance(result, RawResult)
            else getattr(result, "duration", None)
        )
    return MeterReading(
        operation.operation_id,
        items,
        input_tokens=prompt if "input_token" in units else 0,
        generated_tokens=completion if "generated_token" in units else 0,
        audio_seconds=Decimal(str(seconds)) if isinstance(seconds, int | float) else Decimal(0),
    )


def _count(value: object) -> int:
    if isinstance(value, list | tuple):
        return len(value)
    return 0 if value is None else 1


class Meter:
    """The price table, checked against the operations once, and the credits of a request."""

    def __init__(self, settings: CreditSettings) -> None:
        self._prices = settings.price_table()
        self._cache_hit_fraction = settings.cache_hit_fraction
        self._failed = settings.failed_request
        self._cap = settings.max_per_request
        _check(self._prices)

    def credits(self, reading: MeterReading | None, status: int, *, shadow: bool = False) -> int:
        """Whole credits of a request that ended with ``status``.

        A shadow copy (mirrored by the gateway) is free; a failure costs the flat
        ``failed_request``; a request that was never metered (no operation: a 404 route,
        a docs page) costs nothing on success.
        """
        if shadow:
            return 0
        if status >= 400:
            return self._failed
        if reading is None:
            return 0
        price = self._prices[reading.operation_id]
        total = price.request
        # only the priced units: Decimal arithmetic is ~1 us a term, and most prices are flat
        if price.item and reading.items > 1:
            total += (reading.items - 1) * price.item
        if reading.cache_hit:
            total *= self._cache_hit_fraction
        else:
            if price.input_tokens_1k and reading.input_tokens:
                total += reading.input_tokens * price.input_tokens_1k / _THOUSAND
            if price.generated_token and reading.generated_tokens:
                total += reading.generated_tokens * price.generated_token
            if price.audio_second and reading.audio_seconds:
                total += reading.audio_seconds * price.audio_second
        charged = math.ceil(total)
        return min(charged, self._cap) if self._cap else charged


def _check(prices: dict[str, Price]) -> None:
    """Every operation priced, no unknown id, no unit an operation is not metered in."""
    operations = {op.operation_id: op for op in OPERATIONS}
    unknown = sorted(set(prices) - set(operations))
    missing = sorted(set(operations) - set(prices))
    if unknown or missing:
        raise ValueError(
            f"CREDITS_PRICES: unknown operation ids {unknown}, unpriced operations {missing}"
        )
    for operation_id, price in prices.items():
        unmetered = price.units() - set(operations[operation_id].meter_units)
        if unmetered:
            raise ValueError(
                f"CREDITS_PRICES: {operation_id} is not metered in {sorted(unmetered)} "
                f"(it is metered in {list(operations[operation_id].meter_units) or 'requests'})"
            )
