"""Credits from what a request really consumed: the real flow, engine and models.

Each unit of the price table (item, 1k input tokens, audio second, generated token), a
cache hit, a failure, a shadow copy, the rounding, the cap and the checks of the table.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from backends.core.api.api_request import ApiRequest
from backends.core.api.flow import FormBody, RequestFlow
from backends.core.metering.meter import Meter, MeterReading, read_meter
from backends.core.metering.prices import DEFAULT_PRICES, CreditSettings, Price
from backends.core.persistence.log_notes import LogNotes
from shared_schemas.common import Usage
from shared_schemas.generation import GenerateResponse
from shared_schemas.operations import by_id

OPERATIONS = by_id()


def _meter(**settings: Any) -> Meter:
    return Meter(CreditSettings(_env_file=None, **settings))  # type: ignore[call-arg]


def _served(api: RequestFlow, operation_id: str, body: bytes | FormBody) -> tuple[LogNotes, Any]:
    notes = LogNotes()
    prepared = api.prepare(OPERATIONS[operation_id], body, {}, notes)
    result = api.run(prepared.api_request)
    api.finish(prepared, result, notes)
    return notes, result


def test_items_are_counted_from_the_body(api: RequestFlow) -> None:
    texts = [f"metered text number {i}" for i in range(11)]
    notes, _ = _served(api, "embeddings_batch", json.dumps({"texts": texts}).encode())
    assert notes.reading is not None
    assert notes.reading.items == 11
    # the peer's example: 5 + 10 x 0.1 = 6 (without its tier multiplier)
    assert notes.settle(_meter(), 200) == 6


def test_input_tokens_come_from_the_results_usage(api: RequestFlow) -> None:
    body = json.dumps({"texts": ["one short text", "and another, a little longer"]}).encode()
    notes, result = _served(api, "embeddings_batch", body)
    assert notes.reading is not None
    assert notes.reading.input_tokens == result.usage.prompt_tokens > 0
    price = Price(request=Decimal(0), input_tokens_1k=Decimal(1000))  # 1 credit per token
    meter = _meter(prices={"embeddings_batch": price})
    assert notes.settle(meter, 200) == result.usage.prompt_tokens


@pytest.mark.parametrize("response_format", ["json", "vtt"])
def test_audio_seconds_come_from_the_transcript(
    api: RequestFlow, speech_wav: bytes, response_format: str
) -> None:
    form = FormBody({"file": speech_wav, "response_format": response_format}, {"file": "a.wav"})
    notes, _ = _served(api, "transcription_transcribe", form)
    assert notes.reading is not None
    seconds = notes.reading.audio_seconds
    assert Decimal("0.5") < seconds < Decimal(5)  # espeak's "hello world"
    price = Price(request=Decimal(0), audio_second=Decimal(10))
    meter = _meter(prices={"transcription_transcribe": price})
    assert notes.settle(meter, 200) == math.ceil(seconds * 10)


def test_generated_and_input_tokens_are_priced() -> None:
    operation = OPERATIONS["analysis_generate"]
    result = GenerateResponse(
        text="x",
        model="m",
        provider="local",
        finish_reason="stop",
        usage=Usage(prompt_tokens=2500, completion_tokens=17, total_tokens=2517),
    )
    reading = read_meter(ApiRequest(operation), result)
    assert (reading.input_tokens, reading.generated_tokens) == (2500, 17)
    # 4 + 2.5 x 1 + 17 x 0.001 = 6.517, rounded up
    assert _meter().credits(reading, 200) == 7


def test_a_cache_hit_pays_its_fraction_of_the_flat_price(api: RequestFlow) -> None:
    body = json.dumps({"texts": [f"hit {i}" for i in range(11)]}).encode()
    notes = LogNotes()
    prepared = api.prepare(OPERATIONS["embeddings_batch"], body, {}, notes)
    api.cached(prepared, b"{}", notes)
    assert notes.reading == MeterReading("embeddings_batch", items=11, cache_hit=True)
    assert notes.settle(_meter(cache_hit_fraction=Decimal("0.5")), 200) == 3  # 6 x 0.5
    assert _meter(cache_hit_fraction=Decimal(0)).credits(notes.reading, 200) == 0


@pytest.mark.parametrize("status", [400, 404, 422, 500, 503])
def test_a_failure_costs_the_failed_request_price(status: int) -> None:
    reading = MeterReading("embeddings_batch", items=50)
    assert _meter().credits(reading, status) == 0
    assert _meter(failed_request=2).credits(reading, status) == 2
    assert _meter(failed_request=2).credits(None, status) == 2  # failed before validation


def test_a_shadow_copy_is_free_and_settling_happens_once() -> None:
    notes = LogNotes(reading=MeterReading("rag_search"), shadow=True)
    assert notes.settle(_meter(), 200) == 0
    notes = LogNotes(reading=MeterReading("rag_search"))
    assert notes.settle(_meter(), 200) == 3
    assert notes.settle(_meter(failed_request=9), 500) == 3  # the header's value stands


def test_an_unmetered_success_is_free_and_the_cap_holds() -> None:
    assert _meter().credits(None, 200) == 0  # docs, admin: no operation
    reading = MeterReading("transcription_transcribe", audio_seconds=Decimal(3600))
    assert _meter().credits(reading, 200) == 100  # 2 + 3600 x 0.05 = 182, capped
    assert _meter(max_per_request=0).credits(reading, 200) == 182


def test_every_operation_is_priced_and_a_bad_table_fails_at_start_up() -> None:
    with pytest.raises(ValueError, match="unknown operation ids \\['embeddings_nope'\\]"):
        _meter(prices={"embeddings_nope": Price()})
    with pytest.raises(ValueError, match="rag_search is not metered in \\['generated_token'\\]"):
        _meter(prices={"rag_search": Price(generated_token=Decimal(1))})


def test_the_price_table_reads_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDITS_PRICES", '{"rag_search": {"request": "7.5"}}')
    monkeypatch.setenv("CREDITS_MAX_PER_REQUEST", "0")
    meter = Meter(CreditSettings(_env_file=None))  # type: ignore[call-arg]
    assert meter.credits(MeterReading("rag_search"), 200) == 8


def test_the_documented_price_table_is_the_default() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "credits-and-billing.md"
    documented = {}
    for line in doc.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 6 and cells[0] in OPERATIONS:
            values = [Decimal(0) if cell == "-" else Decimal(cell) for cell in cells[1:]]
            documented[cells[0]] = Price(
                request=values[0],
                item=values[1],
                input_tokens_1k=values[2],
                generated_token=values[3],
                audio_second=values[4],
            )
    assert documented == DEFAULT_PRICES
    assert set(documented) == set(OPERATIONS)
