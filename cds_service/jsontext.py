"""Reading JSON text strictly (RFC 8259), for request bodies and files alike.

orjson reads almost everything; what it refuses is either not JSON (NaN, Infinity, text that is
not UTF-8, nesting it will not follow) or a number it cannot hold, which JSON allows: only then
is the text read again with the stdlib, told to refuse what orjson refused for good reason.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any, NoReturn

import orjson

# orjson stops at 1024 levels; the stdlib fallback must not recurse deeper than that either.
MAX_DEPTH = 1024
_BOM = b"\xef\xbb\xbf"


class NotJson(ValueError):
    """The text is not JSON this service reads; the message says why, without echoing it."""


def parse_json(raw: bytes) -> Any:
    raw = raw.removeprefix(_BOM)  # RFC 8259 §8.1: a parser may ignore a byte order mark
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        reason = str(exc)
    if "depth limit" in reason:
        raise NotJson(f"it is nested deeper than {MAX_DEPTH} levels") from None
    try:
        text = raw.decode("utf-8")  # RFC 8259 §8.1: UTF-8 only (not UTF-16 or UTF-32)
    except UnicodeDecodeError:
        raise NotJson("it is not UTF-8 text") from None
    try:
        value = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_double_sized_int,
        )
    except NotJson:
        raise
    except (ValueError, RecursionError):
        raise NotJson(reason) from None
    if _has_lone_surrogate(value):  # orjson refuses these; the stdlib reads them
        # "\ud800" escapes no character: stored or logged, such a string fails as UTF-8.
        raise NotJson("a string holds an unpaired UTF-16 surrogate escape (\\uD800-\\uDFFF)")
    return value


def _has_lone_surrogate(value: Any) -> bool:
    """Whether a string anywhere in the parsed value holds a surrogate (a loop, not recursion:
    the value may be nested 1,024 deep)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if any("\ud800" <= ch <= "\udfff" for ch in item):
                return True
        elif isinstance(item, dict):
            pending += item.keys()
            pending += item.values()
        elif isinstance(item, list):
            pending += item
    return False


def _refuse_constant(name: str) -> NoReturn:
    raise NotJson(f"{name} is not a JSON value")


# Beyond a double, an integer is no number any reader here can compute with (float() fails).
_MOST_INT = int(sys.float_info.max)


def _double_sized_int(text: str) -> int:
    value = int(text)
    if abs(value) > _MOST_INT:
        raise NotJson(f"the number {text[:20]}... is too large")
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NotJson(f"the number {text[:20]} is too large")
    return value
