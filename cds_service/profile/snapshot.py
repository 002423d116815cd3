"""What the profile page shows, stored once per assessment: the evidence behind one card.

Built from the Assessment (markers with values, thresholds, sources) and the Evidence (each
analyte's results over the evidence window). Patient and resource ids are left out: the stored
profile names nobody, like the URL that leads to it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter

from cds_service.evidence import Catalog, Comparator, Evidence, LabValue, UsableStatus
from cds_service.evidence.models import WITHOUT_SOURCES
from cds_service.rules.assessment import Assessment, AxisResult, MarkerResult
from cds_service.rules.engine import judge_marker, number, symbol
from cds_service.rules.loader import Marker, Rules
from cds_service.store.records import ProfileRecord

log = logging.getLogger(__name__)

# The evidence window of the time-series charts: results this long before the assessment, at
# most this many per analyte (the newest). Prefetch asks for the newest 100-200 results.
HISTORY_DAYS = 14
HISTORY_MAX_POINTS = 60


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HistoryPoint(_Frozen):
    value: float
    comparator: Comparator | None = None
    upper: float | None = None
    unit: str
    family: str
    effective: datetime
    status: UsableStatus


class AnalyteHistory(_Frozen):
    analyte: str
    display: str
    freshness_hours: float
    points: tuple[HistoryPoint, ...]  # newest first
    left_out: int = 0  # results before the window (or past the point limit), not stored


class CitedSource(_Frozen):
    id: str
    short: str
    citation: str
    doi: str | None = None


class MarkerCriteria(_Frozen):
    """A marker's criteria as the rules file writes them (for markers without a result)."""

    comparison: str  # of the first criterion: which side fires
    text: str  # canonical units, UCUM: e.g. ">= 2,400 U/mL; > 2 × upper reference limit"


class StoredProfile(_Frozen):
    """The stored page data (JSON). `format` changes when the shape does."""

    format: Literal[1] = 1
    assessment: Assessment  # LabValue.source blanked: it holds resource ids
    history: dict[str, AnalyteHistory]  # analytes the rules judged that have results
    # Stale markers judged as if their result were fresh: only to place the value against its
    # threshold on the chart (drawn as stale; the assessment did not count them).
    stale_placement: dict[str, MarkerResult]
    criteria: dict[str, MarkerCriteria]  # every marker judged
    sources: tuple[CitedSource, ...]


def build_profile(
    assessment: Assessment, evidence: Evidence, rules: Rules, catalog: Catalog
) -> StoredProfile:
    judged_analytes = {m.analyte for m in assessment.markers()}
    window_start = evidence.as_of - timedelta(days=HISTORY_DAYS)
    history = {}
    for analyte in sorted(judged_analytes):
        found = evidence.get(analyte)
        if found is None:
            continue
        in_window = [v for v in found.history if v.effective >= window_start]
        kept = in_window[:HISTORY_MAX_POINTS]
        history[analyte] = AnalyteHistory(
            analyte=analyte,
            display=catalog.analyte(analyte).display,
            freshness_hours=found.freshness_hours,
            points=tuple(_point(v) for v in kept),
            left_out=len(found.history) - len(kept),
        )
    stale_placement = {}
    for marker in assessment.markers():
        if marker.state == "stale" and marker.marker in rules.markers:
            placed = _judged_as_fresh(marker.marker, evidence, rules)
            if placed.threshold is not None:
                stale_placement[marker.marker] = _scrubbed(placed)
    return StoredProfile(
        assessment=_scrubbed_assessment(assessment),
        history=history,
        stale_placement=stale_placement,
        criteria={
            m.marker: _criteria(rules.markers[m.marker])
            for m in assessment.markers()
            if m.marker in rules.markers
        },
        sources=_cited(assessment, rules),
    )


def _point(value: LabValue) -> HistoryPoint:
    return HistoryPoint(
        value=value.value,
        comparator=value.comparator,
        upper=value.upper,
        unit=value.unit,
        family=value.family,
        effective=value.effective,
        status=value.status,
    )


def _criteria(marker: Marker) -> MarkerCriteria:
    texts = [
        f"{symbol(c.comparison)} {number(c.threshold)} {c.unit}"
        if c.threshold is not None and c.unit is not None
        else f"{symbol(c.comparison)} {c.uln_multiple:g} × upper reference limit"
        for c in marker.criteria
    ]
    return MarkerCriteria(comparison=marker.criteria[0].comparison, text="; ".join(texts))


def _judged_as_fresh(marker_id: str, evidence: Evidence, rules: Rules) -> MarkerResult:
    marker = rules.markers[marker_id]
    found = evidence.analytes[marker.analyte]
    as_if_fresh = Evidence(
        as_of=evidence.as_of,
        analytes={marker.analyte: found.model_copy(update={"fresh": True})},
        problems=(),
    )
    return judge_marker(marker, as_if_fresh, rules.near_miss_fraction)


def _scrubbed(marker: MarkerResult) -> MarkerResult:
    if marker.value is None:
        return marker
    return marker.model_copy(update={"value": marker.value.model_copy(update={"source": ""})})


def _scrubbed_axis(axis: AxisResult) -> AxisResult:
    return axis.model_copy(
        update={
            "pivotal": tuple(_scrubbed(m) for m in axis.pivotal),
            "supportive": tuple(_scrubbed(m) for m in axis.supportive),
        }
    )


def _scrubbed_assessment(assessment: Assessment) -> Assessment:
    """The assessment without resource ids (some EHRs build them from record numbers)."""
    return assessment.model_copy(
        update={
            "axes": tuple(_scrubbed_axis(a) for a in assessment.axes),
            "immune": tuple(_scrubbed(m) for m in assessment.immune),
            "signs": tuple(_scrubbed(m) for m in assessment.signs),
            "setting_markers": tuple(_scrubbed(m) for m in assessment.setting_markers),
            "near_misses": tuple(_scrubbed(m) for m in assessment.near_misses),
        }
    )


def _cited(assessment: Assessment, rules: Rules) -> tuple[CitedSource, ...]:
    """The sources the card cites: each judged marker's criterion and the pattern's own."""
    ids = [m.source for m in assessment.markers() if m.source]
    subtype = assessment.subtype
    if subtype is not None and subtype in rules.patterns:
        ids.append(rules.patterns[subtype].source)
    if subtype == "multiplex-assay-needed":
        ids.append(rules.diagnostic_bar.source)
    if assessment.state is not None:
        ids.append(assessment.state.source)
    ids += [item.source for item in assessment.advice]
    if subtype == "immunoparalysis":
        ids.append(rules.immunoparalysis.source)
    return tuple(
        CitedSource(id=source_id, short=spec.short, citation=spec.citation, doi=spec.doi)
        for source_id in dict.fromkeys(ids)
        if (spec := rules.sources.get(source_id)) is not None
    )


def profile_json(profile: StoredProfile) -> dict[str, Any]:
    return profile.model_dump(mode="json")


# --- on the hot path: the same JSON, built without the models -----------------------------------
# Building StoredProfile validates and copies every model again (~0.4 ms per answer, for a page
# most clinicians never open). profile_data() writes the JSON profile_json(build_profile(...))
# gives, dumping the evidence's own models once (a test compares the two on every fixture).
_POINT_FIELDS = {"__all__": set(HistoryPoint.model_fields)}
_LAB_VALUES = TypeAdapter(list[LabValue])


def profile_data(
    assessment: Assessment, evidence: Evidence, rules: Rules, catalog: Catalog
) -> dict[str, Any]:
    judged_analytes = {m.analyte for m in assessment.markers()}
    window_start = evidence.as_of - timedelta(days=HISTORY_DAYS)
    history: dict[str, Any] = {}
    for analyte in sorted(judged_analytes):
        found = evidence.get(analyte)
        if found is None:
            continue
        kept = [v for v in found.history if v.effective >= window_start][:HISTORY_MAX_POINTS]
        history[analyte] = {
            "analyte": analyte,
            "display": catalog.analyte(analyte).display,
            "freshness_hours": found.freshness_hours,
            "points": _LAB_VALUES.dump_python(kept, mode="json", include=_POINT_FIELDS),
            "left_out": len(found.history) - len(kept),
        }
    stale_placement = {}
    for marker in assessment.markers():
        if marker.state == "stale" and marker.marker in rules.markers:
            placed = _judged_as_fresh(marker.marker, evidence, rules)
            if placed.threshold is not None:
                stale_placement[marker.marker] = _scrubbed(placed).model_dump(mode="json")
    return {
        "format": 1,
        "assessment": assessment.model_dump(mode="json", context={WITHOUT_SOURCES: True}),
        "history": history,
        "stale_placement": stale_placement,
        "criteria": {
            m.marker: _criteria_json(rules.markers[m.marker])
            for m in assessment.markers()
            if m.marker in rules.markers
        },
        "sources": [source.model_dump() for source in _cited(assessment, rules)],
    }


# Rules are loaded once per process: each marker's criteria text is formatted once.
_CRITERIA: dict[int, tuple[Marker, dict[str, Any]]] = {}


def _criteria_json(marker: Marker) -> dict[str, Any]:
    cached = _CRITERIA.get(id(marker))
    if cached is None or cached[0] is not marker:
        if len(_CRITERIA) > 4096:  # many rules files loaded (tests): start again
            _CRITERIA.clear()
        cached = (marker, _criteria(marker).model_dump())
        _CRITERIA[id(marker)] = cached
    return dict(cached[1])


def profile_record(
    assessment_id: str,
    assessment: Assessment,
    evidence: Evidence,
    rules: Rules,
    catalog: Catalog,
) -> ProfileRecord | None:
    """The store row for a card's profile link; None (logged) if it cannot be built, so that a
    fault here costs the page, never the hook call."""
    try:
        return ProfileRecord(
            assessment_id=assessment_id,
            profile=profile_data(assessment, evidence, rules, catalog),
        )
    except Exception:
        log.exception("profile page: the stored profile could not be built; its link will fail")
        return None
