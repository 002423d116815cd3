"""Reading value[x] of an Observation (or of one of its components), leniently.

Returns the number as reported (not yet converted), its comparator, the unit text to resolve
and a display string; or a `ValueProblem`. Never raises on malformed input.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from typing import NamedTuple, cast

from .models import Comparator, ProblemCode

_COMPARATORS: dict[str, Comparator] = {
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
    "≤": "<=",
    "≥": ">=",
}

# "<5", "> 5000", "5,000", "<=0.5 pg/mL", "1.2e3". Thousands separators only in groups of three:
# "1,5" (a decimal comma?) is ambiguous and therefore not a number here.
_VALUE_STRING = re.compile(
    r"""\s*(?P<cmp><=|>=|≤|≥|<|>)?\s*
    (?P<num>[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][+-]?\d+)?|[+-]?\.\d+)
    \s*(?P<unit>[^\d\s,.].*?)?\s*""",
    re.VERBOSE,
)
_MAX_REPORTED = 60

_OTHER_VALUE_TYPES = (
    "valueCodeableConcept",
    "valueBoolean",
    "valueRatio",
    "valueSampledData",
    "valueTime",
    "valueDateTime",
    "valuePeriod",
)


# Named tuples, not frozen dataclasses: one of each per value read, and a frozen dataclass
# costs four times as much to build.
class RawValue(NamedTuple):
    value: float
    comparator: Comparator | None
    upper: float | None  # valueRange high, when both bounds are given
    unit: str | None  # unit text to resolve; None: take it from the referenceRange
    reported: str


class ValueProblem(NamedTuple):
    code: str
    reason: str


def number(x: object) -> float | None:
    """A finite JSON number (bools are not numbers), else None."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    value = float(x)
    return value if math.isfinite(value) else None


def quantity_unit(quantity: Mapping[str, object], ucum_systems: Collection[str]) -> str | None:
    """Quantity.code when the system is UCUM, else Quantity.unit (then code as a last resort)."""
    code, unit, system = quantity.get("code"), quantity.get("unit"), quantity.get("system")
    if (
        isinstance(system, str)
        and system in ucum_systems
        and isinstance(code, str)
        and code.strip()
    ):
        return code.strip()
    for text in (unit, code):
        if isinstance(text, str) and text.strip():
            return text.strip()
    return None


def display_unit(quantity: Mapping[str, object]) -> str:
    for key in ("unit", "code"):
        text = quantity.get(key)
        if isinstance(text, str) and text.strip():
            return text.strip()
    return ""


def clean_display(text: str) -> str:
    """Printable, single-line, bounded text for `LabValue.reported`."""
    if (
        len(text) <= _MAX_REPORTED
        and text.isprintable()
        and "  " not in text
        and text == text.strip()
    ):
        return text  # fast path: the usual, already clean text
    printable = "".join(ch if ch.isprintable() else " " for ch in text)
    collapsed = " ".join(printable.split())
    return collapsed if len(collapsed) <= _MAX_REPORTED else collapsed[: _MAX_REPORTED - 1] + "…"


def format_number(x: float) -> str:
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else f"{x:.15g}"


def _with_unit(text: str, unit: str) -> str:
    return clean_display(f"{text} {unit}" if unit else text)


def _read_quantity(q: object, ucum_systems: Collection[str]) -> RawValue | ValueProblem:
    if not isinstance(q, dict):
        return ValueProblem(ProblemCode.MALFORMED, "valueQuantity is not an object")
    value = number(q.get("value"))
    if value is None:
        return ValueProblem(ProblemCode.NO_VALUE, "valueQuantity has no numeric value")
    raw_comparator = q.get("comparator")
    comparator: Comparator | None = None
    if raw_comparator is not None:
        if not isinstance(raw_comparator, str) or raw_comparator not in _COMPARATORS:
            return ValueProblem(ProblemCode.UNPARSEABLE_VALUE, "unsupported Quantity.comparator")
        comparator = _COMPARATORS[raw_comparator]
    unit = quantity_unit(q, ucum_systems)  # None: the caller tries the referenceRange unit
    shown = f"{comparator or ''}{format_number(value)}"
    return RawValue(value, comparator, None, unit, _with_unit(shown, display_unit(q)))


def parse_value_string(text: str) -> tuple[float, Comparator | None, str | None] | None:
    """(number, comparator, unit text or None) for strings such as "<5 pg/mL"; else None."""
    match = _VALUE_STRING.fullmatch(text)
    if match is None:
        return None
    value = float(match["num"].replace(",", ""))
    if not math.isfinite(value):
        return None
    comparator = _COMPARATORS[match["cmp"]] if match["cmp"] else None
    return value, comparator, match["unit"] or None


def _read_string(text: object) -> RawValue | ValueProblem:
    if not isinstance(text, str):
        return ValueProblem(ProblemCode.MALFORMED, "valueString is not a string")
    parsed = parse_value_string(text)
    if parsed is None:
        return ValueProblem(ProblemCode.UNPARSEABLE_VALUE, "valueString is not a number")
    value, comparator, unit = parsed
    return RawValue(value, comparator, None, unit, clean_display(text))


def _read_range(r: object, ucum_systems: Collection[str]) -> RawValue | ValueProblem:
    if not isinstance(r, dict):
        return ValueProblem(ProblemCode.MALFORMED, "valueRange is not an object")
    low, high = r.get("low"), r.get("high")
    low_q = low if isinstance(low, dict) else {}
    high_q = high if isinstance(high, dict) else {}
    low_v, high_v = number(low_q.get("value")), number(high_q.get("value"))
    unit = quantity_unit(low_q, ucum_systems) or quantity_unit(high_q, ucum_systems)
    shown_unit = display_unit(low_q) or display_unit(high_q)
    if low_v is None and high_v is None:
        return ValueProblem(ProblemCode.NO_VALUE, "valueRange has no numeric bound")
    if unit is None:
        return ValueProblem(ProblemCode.UNIT_MISSING, "valueRange has no unit")
    for bound in (low_q, high_q):
        other = quantity_unit(bound, ucum_systems)
        if other is not None and other != unit:
            return ValueProblem(
                ProblemCode.UNIT_NOT_CONVERTIBLE, "valueRange bounds differ in unit"
            )
    if low_v is not None and high_v is not None:
        if high_v < low_v:
            return ValueProblem(ProblemCode.MALFORMED, "valueRange high is below low")
        shown = f"{format_number(low_v)}-{format_number(high_v)}"
        return RawValue(low_v, ">=", high_v, unit, _with_unit(shown, shown_unit))
    if low_v is not None:
        return RawValue(
            low_v, ">=", None, unit, _with_unit(f">={format_number(low_v)}", shown_unit)
        )
    top = cast(float, high_v)
    return RawValue(top, "<=", None, unit, _with_unit(f"<={format_number(top)}", shown_unit))


def read_value(
    element: Mapping[str, object], ucum_systems: Collection[str]
) -> RawValue | ValueProblem:
    """Read value[x] (or dataAbsentReason) of an Observation or of one of its components."""
    if "valueQuantity" in element:
        return _read_quantity(element["valueQuantity"], ucum_systems)
    if "valueString" in element:
        return _read_string(element["valueString"])
    if "valueInteger" in element:
        value = number(element["valueInteger"])
        if value is None:
            return ValueProblem(ProblemCode.MALFORMED, "valueInteger is not a number")
        return RawValue(value, None, None, None, format_number(value))
    if "valueRange" in element:
        return _read_range(element["valueRange"], ucum_systems)
    absent = element.get("dataAbsentReason")
    if absent is not None:
        return ValueProblem(ProblemCode.DATA_ABSENT, f"dataAbsentReason: {_absent_code(absent)}")
    for key in _OTHER_VALUE_TYPES:
        if key in element:
            return ValueProblem(ProblemCode.NO_VALUE, f"{key} is not a quantity")
    return ValueProblem(ProblemCode.NO_VALUE, "no value")


def _absent_code(reason: object) -> str:
    """The coded reason (e.g. "not-performed"); free text is not copied into problems."""
    codings = reason.get("coding") if isinstance(reason, dict) else None
    if isinstance(codings, list):
        for coding in codings:
            code = coding.get("code") if isinstance(coding, dict) else None
            if isinstance(code, str) and code:
                return clean_display(code)
    return "unspecified"
