"""Reading request bodies and turning validation failures into errors that name the field."""

from __future__ import annotations

import json
from typing import Any, TypeVar

import orjson
from flask import request
from pydantic import BaseModel, ValidationError

from cds_service.api.errors import ApiError

Model = TypeVar("Model", bound=BaseModel)

_JSON_TYPES = ("application/json", "application/fhir+json", "application/json+fhir")


def json_body() -> Any:
    """The request body as JSON: 415 when it is not declared as JSON, 400 when it does not parse.

    The size limit (413) is enforced by Flask's MAX_CONTENT_LENGTH before the body is read.
    """
    mimetype = request.mimetype
    if mimetype not in _JSON_TYPES:
        shown = mimetype or "none"
        raise ApiError(415, f"Content-Type must be application/json (got {shown}).")
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise ApiError(400, "The request body is empty; a JSON object is required.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:  # orjson refuses integers beyond 64 bits, which JSON allows: the stdlib reads them
            return json.loads(raw)
        except ValueError:
            raise ApiError(400, f"The request body is not valid JSON: {exc}.") from None


def validate(model: type[Model], data: Any, *, prefix: str = "") -> Model:
    """Validate `data` with `model`; on failure a 400 naming each faulty field."""
    if not isinstance(data, dict):
        where = prefix.rstrip(".") or "The request body"
        raise ApiError(400, f"{where} must be a JSON object.", field=prefix.rstrip(".") or None)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, prefix=prefix) from None


def validation_error(exc: ValidationError, *, prefix: str = "") -> ApiError:
    problems = []
    first_field = None
    for error in exc.errors(include_url=False, include_input=False)[:5]:
        path = prefix + ".".join(str(part) for part in error["loc"])
        first_field = first_field or path or None
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{path}: {message}" if path else message)
    more = exc.error_count() - len(problems)
    text = "; ".join(problems) + (f"; and {more} more" if more > 0 else "")
    return ApiError(400, f"Invalid request: {text}.", field=first_field)
