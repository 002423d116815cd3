"""FHIR date/time reading: dateTime, instant, Period and issued, to tz-aware UTC datetimes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime

# FHIR dateTime may be partial: YYYY, YYYY-MM or YYYY-MM-DD.
_PARTIAL_DATE = re.compile(r"(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?")


def parse_fhir_datetime(value: object) -> datetime | None:
    """UTC datetime of a FHIR dateTime/instant string; None when it is not one.

    Partial dates take their first instant (2026-11 -> 2026-11-01T00:00Z); a time without a
    zone (invalid FHIR, seen in the wild) is read as UTC.
    """
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    try:
        if "T" in text:
            parsed = datetime.fromisoformat(text)
        else:
            match = _PARTIAL_DATE.fullmatch(text)
            if match is None:
                return None
            year, month, day = match.groups()
            parsed = datetime(int(year), int(month or 1), int(day or 1))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def effective_time(resource: Mapping[str, object]) -> datetime | None:
    """effectiveDateTime / effectiveInstant / effectivePeriod (end, else start) / issued."""
    for key in ("effectiveDateTime", "effectiveInstant"):
        found = parse_fhir_datetime(resource.get(key))
        if found is not None:
            return found
    period = resource.get("effectivePeriod")
    if isinstance(period, dict):
        found = parse_fhir_datetime(period.get("end")) or parse_fhir_datetime(period.get("start"))
        if found is not None:
            return found
    return parse_fhir_datetime(resource.get("issued"))
