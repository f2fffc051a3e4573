"""The pydantic models: examples, descriptions, bounds and strictness agree with the schema."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
from typing import Any

import jsonschema_rs
import pytest
from pydantic import BaseModel, ValidationError

import shared_schemas
from shared_schemas.common import FormModel, RequestModel, ResponseModel

BASES = (RequestModel, FormModel, ResponseModel)


def _all_models() -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}
    for info in pkgutil.iter_modules(shared_schemas.__path__):
        module = importlib.import_module(f"shared_schemas.{info.name}")
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, (RequestModel, ResponseModel))
                and obj.__module__ == module.__name__
                and not name.startswith("_")
                and obj not in BASES
            ):
                found[f"{obj.__module__}.{name}"] = obj
    return [found[key] for key in sorted(found)]


MODELS = _all_models()
IDS = [model.__name__ for model in MODELS]


def _mode(model: type[BaseModel]) -> Any:
    return "validation" if issubclass(model, RequestModel) else "serialization"


def _examples(model: type[BaseModel]) -> list[dict[str, Any]]:
    examples = model.model_json_schema(mode=_mode(model)).get("examples", [])
    assert isinstance(examples, list)
    return examples


def test_models_were_found() -> None:
    assert len(MODELS) > 60
    assert sum(issubclass(m, RequestModel) for m in MODELS) >= 20


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_examples_validate_against_model_and_schema(model: type[BaseModel]) -> None:
    examples = _examples(model)
    assert examples, f"{model.__name__} has no example"
    schema = model.model_json_schema(mode=_mode(model))
    validator = jsonschema_rs.validator_for(schema)
    for example in examples:
        validator.validate(example)
        parsed = model.model_validate_json(json.dumps(example))
        if issubclass(model, ResponseModel):
            # What a backend sends, built from this model, must satisfy the published schema.
            validator.validate(parsed.model_dump(mode="json"))


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_every_field_is_described(model: type[BaseModel]) -> None:
    assert model.__doc__ and model.__doc__.strip()
    missing = [name for name, field in model.model_fields.items() if not field.description]
    assert not missing, f"{model.__name__}: {missing}"


@pytest.mark.parametrize("model", [m for m in MODELS if issubclass(m, RequestModel)])
def test_requests_forbid_unknown_fields(model: type[BaseModel]) -> None:
    schema = model.model_json_schema(mode="validation")
    assert schema["additionalProperties"] is False
    example = dict(_examples(model)[0]) | {"unexpected_field": 1}
    with pytest.raises(ValidationError, match="unexpected_field"):
        model.model_validate_json(json.dumps(example))


def test_response_schemas_list_every_field_as_required() -> None:
    from shared_schemas.common import Usage

    schema = Usage.model_json_schema(mode="serialization")
    assert set(schema["required"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}


def test_form_models_coerce_text_fields() -> None:
    from shared_schemas.transcription import TranscribeForm
    from shared_schemas.transcription_tools import ConvertForm

    assert issubclass(ConvertForm, FormModel) and issubclass(TranscribeForm, FormModel)
    form = ConvertForm.model_validate({"file": b"RIFF", "channels": "2", "sample_rate": "16000"})
    assert (form.channels, form.sample_rate) == (2, 16000)
    assert TranscribeForm.model_validate({"file": b"x", "temperature": "0.5"}).temperature == 0.5
    with pytest.raises(ValidationError):
        ConvertForm.model_validate({"file": b"RIFF", "channels": "3"})
