"""Pydantic validation errors as the messages the service shows: `path: reason; path: reason`.

One wording for every place that reports them (request bodies, settings, knowledge files, the
trusted-clients file, rendered cards): the field path joined with dots, pydantic's
"Value error, " prefix dropped, at most a few problems and a count of the rest.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError
from pydantic_core import ErrorDetails


def error_path(loc: Sequence[int | str], separator: str = ".") -> str:
    return separator.join(str(part) for part in loc)


def error_message(error: ErrorDetails) -> str:
    return error["msg"].removeprefix("Value error, ")


def error_lines(
    exc: ValidationError, *, limit: int = 5, prefix: str = "", top_level: str = ""
) -> tuple[list[tuple[str, str]], int]:
    """The first `limit` problems as (path, message) and how many more there are.

    `prefix` goes before each path (`context.`); `top_level` names an error without a path."""
    errors = exc.errors(include_url=False, include_input=False)[:limit]
    lines = [
        ((prefix + error_path(error["loc"])) or top_level, error_message(error)) for error in errors
    ]
    return lines, exc.error_count() - len(lines)
