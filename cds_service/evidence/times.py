"""FHIR date/time reading: dateTime, instant, Period and issued, to tz-aware UTC datetimes."""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import NamedTuple

# FHIR dateTime may be partial: YYYY, YYYY-MM or YYYY-MM-DD.
_PARTIAL_DATE = re.compile(r"(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?")


class ReadTime(NamedTuple):
    moment: datetime  # UTC
    zone_assumed: bool  # a time of day without a zone (invalid FHIR), read as UTC


def read_fhir_datetime(value: object) -> ReadTime | None:
    """A FHIR dateTime/instant string as UTC; None when it is not one.

    Partial dates take their first instant (2026-11 -> 2026-11-01T00:00Z): FHIR gives dates no
    zone. A time of day without a zone is invalid FHIR but seen in the wild: it is read as UTC,
    and `zone_assumed` says so, since the lab's local time may differ from UTC by up to 14 h. A
    time that falls outside the calendar once in UTC (9999-12-31T23:59:59-12:00) is no time.
    """
    if not isinstance(value, str) or not value:
        return None
    return _read_text(value)


# The results of one panel share their time, and a chart repeats a few times many times over.
@lru_cache(maxsize=4096)
def _read_text(value: str) -> ReadTime | None:
    text = value.strip()
    try:
        if "T" in text:
            parsed = datetime.fromisoformat(text)
        else:
            match = _PARTIAL_DATE.fullmatch(text)
            if match is None:
                return None
            year, month, day = match.groups()
            return ReadTime(datetime(int(year), int(month or 1), int(day or 1), tzinfo=UTC), False)
        if parsed.tzinfo is None:
            return ReadTime(parsed.replace(tzinfo=UTC), True)
        return ReadTime(parsed.astimezone(UTC), False)
    except (ValueError, OverflowError):
        return None


def fhir_date_span(value: object) -> tuple[date, date] | None:
    """(earliest, latest) day a FHIR date can mean: "2023" is 2023-01-01 to 2023-12-31,
    "2023-05" a month, "2023-05-01" one day; a dateTime its day. None when it is no date."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    match = _PARTIAL_DATE.fullmatch(text)
    if match is None:
        moment = parse_fhir_datetime(text) if "T" in text else None
        return (moment.date(), moment.date()) if moment is not None else None
    year = int(match[1])
    month = int(match[2]) if match[2] else None
    day = int(match[3]) if match[3] else None
    try:
        if month is None:
            return date(year, 1, 1), date(year, 12, 31)
        if day is None:
            return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])
        return date(year, month, day), date(year, month, day)
    except ValueError:  # 2010-02-29, month 13
        return None


def parse_fhir_datetime(value: object) -> datetime | None:
    """UTC datetime of a FHIR dateTime/instant string; None when it is not one."""
    found = read_fhir_datetime(value)
    return found.moment if found is not None else None


def effective_time(resource: Mapping[str, object]) -> ReadTime | None:
    """effectiveDateTime / effectiveInstant / effectivePeriod (end, else start) / issued."""
    for key in ("effectiveDateTime", "effectiveInstant"):
        found = read_fhir_datetime(resource.get(key))
        if found is not None:
            return found
    period = resource.get("effectivePeriod")
    if isinstance(period, dict):
        found = read_fhir_datetime(period.get("end")) or read_fhir_datetime(period.get("start"))
        if found is not None:
            return found
    return read_fhir_datetime(resource.get("issued"))


# An evaluation time ("evaluate at") far from today is a typing error, and its arithmetic (a
# window of days before it) would leave the calendar.
EVALUATION_YEARS = range(1900, 2201)


def evaluation_time_problem(moment: datetime) -> str | None:
    """Why a requested evaluation time cannot be used; None when it can."""
    if moment.utcoffset() is None:
        return "it needs a time zone, e.g. 2026-11-20T12:00:00Z"
    try:
        year = moment.astimezone(UTC).year
    except OverflowError:
        year = None
    if year not in EVALUATION_YEARS:
        return f"it must fall between the years {EVALUATION_YEARS[0]} and {EVALUATION_YEARS[-1]}"
    return None
