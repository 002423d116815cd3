"""Reading request bodies and turning validation failures into errors that name the field."""

from __future__ import annotations

import json
from typing import Any, TypeVar

import orjson
from flask import request
from pydantic import BaseModel, ValidationError

from cds_service.api.errors import ApiError
from cds_service.validation import error_lines

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
    lines, more = error_lines(exc, prefix=prefix)
    first_field = next((path for path, _ in lines if path), None)
    problems = [f"{path}: {message}" if path else message for path, message in lines]
    text = "; ".join(problems) + (f"; and {more} more" if more > 0 else "")
    return ApiError(400, f"Invalid request: {text}.", field=first_field)
