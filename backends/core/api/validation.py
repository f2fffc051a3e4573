"""Turn raw request bodies into the shared pydantic models, with one error format.

JSON bodies are validated in pydantic's strict mode: the contract says `"top_k": "5"` is
not an integer, and a contract suite sends exactly such values expecting a 422.
Multipart form fields arrive as strings, so they are validated in lax mode. Path parameters
are checked against the same constrained types the contract declares for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from backends.core.errors import BadRequest, InvalidInput
from shared_schemas.common import CollectionName
from shared_schemas.operations import Operation

ModelT = TypeVar("ModelT", bound=BaseModel)


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic errors -> ErrorDetail dicts (loc, message, type); input values are not echoed."""
    return [
        {"loc": ["body", *error["loc"]], "message": error["msg"], "type": error["type"]}
        for error in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


def parse_json_body(model: type[ModelT], raw: bytes) -> ModelT:
    """Validate a JSON body. Not JSON -> 400 bad_request; wrong shape/values -> 422."""
    if not raw.strip():
        raise InvalidInput(
            "Request body is required",
            details=[{"loc": ["body"], "message": "Field required", "type": "missing"}],
        )
    try:
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            raise BadRequest("Request body is not valid JSON") from None
        raise InvalidInput("Request validation failed", details=validation_details(exc)) from None


def validate_form(model: type[ModelT], fields: dict[str, Any]) -> ModelT:
    """Validate multipart form fields (strings and uploaded bytes) against ``model``."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise InvalidInput("Request validation failed", details=validation_details(exc)) from None


# Path parameter name -> its contract type (the only one today: a collection's {name}).
_PATH_PARAM_TYPES: dict[str, Any] = {"name": CollectionName}


@cache
def _path_adapter(name: str) -> TypeAdapter[str]:
    return TypeAdapter(_PATH_PARAM_TYPES.get(name, str))


def validate_path(operation: Operation, path_params: Mapping[str, str]) -> dict[str, str]:
    """The operation's path parameters, validated; a bad or missing one -> 422 at ["path", name]."""
    validated: dict[str, str] = {}
    details: list[dict[str, Any]] = []
    for name in operation.path_params:
        value = path_params.get(name)
        if value is None:
            details.append({"loc": ["path", name], "message": "Field required", "type": "missing"})
            continue
        try:
            validated[name] = _path_adapter(name).validate_python(value, strict=True)
        except ValidationError as exc:
            details.extend(
                {"loc": ["path", name], "message": error["msg"], "type": error["type"]}
                for error in exc.errors(include_url=False, include_input=False)
            )
    if details:
        raise InvalidInput("Path parameter validation failed", details=details)
    return validated
