"""Per-analyte summary: latest and previous value, trend and freshness."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta

from .catalog import AnalyteEntry, TrendRule
from .models import AnalyteEvidence, LabValue, Trend


def _interval(v: LabValue) -> tuple[float, float]:
    """The set of true values a result allows: "<5" -> (-inf, 5], a range -> [low, high]."""
    if v.comparator in ("<", "<="):
        return -math.inf, v.value
    if v.comparator in (">", ">="):
        return v.value, (v.upper if v.upper is not None else math.inf)
    return v.value, v.value


def trend(latest: LabValue, previous: LabValue | None, rule: TrendRule) -> Trend:
    """Compare the latest result with the previous one of the same family.

    Rising when every value the latest result allows exceeds every value the previous one
    allows by more than the analyte's minimum change (relative: fraction of the previous value;
    absolute: canonical units); falling likewise downwards; stable when both are exact numbers
    within the minimum change; unknown otherwise (e.g. "<5" after "<5", or no previous result).
    """
    if previous is None:
        return "unknown"
    latest_low, latest_high = _interval(latest)
    prev_low, prev_high = _interval(previous)
    if rule.absolute_change is not None:
        change = rule.absolute_change
        rising = latest_low > prev_high + change
        falling = latest_high < prev_low - change
    else:
        relative = rule.relative_change or 0.0
        rising = latest_low > prev_high + abs(prev_high) * relative
        falling = latest_high < prev_low - abs(prev_low) * relative
    if rising:
        return "rising"
    if falling:
        return "falling"
    exact = latest_low == latest_high and prev_low == prev_high
    return "stable" if exact else "unknown"


def _newest_first(values: Iterable[LabValue]) -> tuple[LabValue, ...]:
    # At equal times a final/corrected result goes before a preliminary one; source keeps
    # the order deterministic.
    return tuple(
        sorted(
            values, key=lambda v: (v.effective, v.status != "preliminary", v.source), reverse=True
        )
    )


def summarize(entry: AnalyteEntry, values: Iterable[LabValue], as_of: datetime) -> AnalyteEvidence:
    history = _newest_first(values)
    latest = history[0]
    previous = next(
        (v for v in history[1:] if v.family == latest.family and v.effective < latest.effective),
        None,
    )
    window = timedelta(hours=entry.freshness_hours)
    return AnalyteEvidence(
        analyte=entry.id,
        latest=latest,
        previous=previous,
        trend=trend(latest, previous, entry.trend),
        history=history,
        fresh=as_of - latest.effective <= window,
        freshness_hours=entry.freshness_hours,
    )
