"""Reading request bodies and turning validation failures into errors that name the field."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from flask import current_app, request
from gunicorn.http.errors import ParseException
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

from cds_service.api.errors import ApiError
from cds_service.jsontext import NotJson, parse_json
from cds_service.validation import error_lines

Model = TypeVar("Model", bound=BaseModel)

_JSON_TYPES = ("application/json", "application/fhir+json", "application/json+fhir")


def json_body() -> Any:
    """The request body as JSON: 415 when it is not declared as JSON, 400 when it does not parse.

    The size limit (413) is enforced before the body is read when it has a Content-Length, and
    while it is read when it is chunked.
    """
    mimetype = request.mimetype
    if mimetype not in _JSON_TYPES:
        shown = mimetype or "none"
        raise ApiError(415, f"Content-Type must be application/json (got {shown}).")
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        shown = encoding if encoding.isascii() and len(encoding) <= 20 else "this encoding"
        raise ApiError(
            415, f"Content-Encoding {shown} is not accepted: send the body uncompressed."
        )
    raw = _body()
    if not raw.strip():
        raise ApiError(400, "The request body is empty; a JSON object is required.")
    try:
        return parse_json(raw)
    except NotJson as exc:
        raise ApiError(400, f"The request body is not valid JSON: {exc}.") from None


def _body() -> bytes:
    """The whole body, or 413 past the size limit, 400 when it is cut short or its chunked
    framing is broken, 408 when the client stops sending it."""
    declared = request.content_length
    seconds = float(current_app.config["BODY_READ_SECONDS"])
    try:
        with _stall_timeout(request.environ.get("gunicorn.socket"), seconds):
            if declared is not None or "wsgi.input_terminated" not in request.environ:
                return _complete(request.get_data(cache=False), declared)  # 413 before reading
            # Chunked: werkzeug would stop at the limit without a word (a cut body that may
            # still parse), so read one byte past it to tell a body that fits from one that
            # does not.
            limit = int(current_app.config["MAX_CONTENT_LENGTH"])
            raw: bytes = request.environ["wsgi.input"].read(limit + 1)
    except ParseException as exc:  # gunicorn's chunk parser: size, extension, terminator
        raise ApiError(400, f"The chunked request body is malformed: {exc}.") from None
    except (OSError, ClientDisconnected) as exc:  # werkzeug's name for any failed read
        if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
            raise ApiError(
                408,
                f"The request body stopped arriving: nothing more came for {seconds:g} s; it "
                "was not read.",
            ) from None
        raise ApiError(400, "The request body ended before it was complete.") from None
    if len(raw) > limit:
        raise RequestEntityTooLarge()
    return raw


def _complete(raw: bytes, declared: int | None) -> bytes:
    if declared is not None and len(raw) < declared:
        raise ApiError(
            400,
            f"The request body ended after {len(raw)} of the {declared} bytes its "
            "Content-Length announced.",
        )
    return raw


@contextmanager
def _stall_timeout(sock: socket.socket | None, seconds: float) -> Iterator[None]:
    """Each read of the body on gunicorn's socket waits at most `seconds`.

    A client that announces more than it sends would otherwise hold a sync worker until
    gunicorn kills it, and gunicorn's own answer then is a bare 500. (A client that keeps
    sending a trickle is the buffering proxy's to stop: see the README.)
    """
    if sock is None:  # another WSGI server, or Flask's test client
        yield
        return
    before = sock.gettimeout()
    sock.settimeout(seconds)
    try:
        yield
    finally:
        sock.settimeout(before)


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
