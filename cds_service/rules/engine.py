"""The subtype rules: evidence + rules -> assessment. Pure functions; no I/O, no clock.

The time of evaluation is the evidence's `as_of` (freshness was judged against it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from cds_service.context.models import EMPTY_CHART, ChartContext, SettingFinding
from cds_service.evidence import AnalyteEvidence, Evidence, LabValue
from cds_service.rules.assessment import (
    Assessment,
    AxisResult,
    Decision,
    MarkerResult,
    ScoreView,
    SettingView,
    Subtype,
)
from cds_service.rules.conditions import AtLeast
from cds_service.rules.loader import Criterion, Marker, Rules
from cds_service.rules.schema import AxisSpec
from cds_service.rules.setting_rules import (
    SettingResult,
    drug_effects,
    judge_setting,
    pick_setting,
    unusable_results,
)
from cds_service.rules.setting_rules import (
    unusable_problems as _unusable,
)


def assess(
    evidence: Evidence,
    rules: Rules,
    chart: ChartContext = EMPTY_CHART,
    scores: Sequence[ScoreView] = (),
) -> Assessment:
    """The cytokine pattern, judged within the clinical setting the chart records.

    `scores` are the clinical scores computed for this patient (ASTCT grade, HLH-2004, HScore,
    MAS-2016, cHIS); the setting rules read them as facts.
    """
    applied, others = pick_setting(chart, rules)
    after = drug_effects(evidence, chart, rules)
    judged, clinical = _judge_in(rules, evidence, chart, scores, after, applied)
    handed_over_from = None
    if applied is not None and _hands_over(rules, applied.setting, clinical):
        for other in (o for o in others if o.setting in rules.precedence.hand_over_to):
            judged_other, clinical_other = _judge_in(rules, evidence, chart, scores, after, other)
            # The first setting with something to say takes over, a state met or one it cannot
            # judge yet ("cannot be judged" is advice; passing it over would hide it).
            if clinical_other.state is not None or clinical_other.undecided:
                handed_over_from = applied.setting
                others = (applied, *(o for o in others if o is not other))
                applied, judged, clinical = other, judged_other, clinical_other
                break
    setting_id = applied.setting if applied is not None else "unknown"
    axes = tuple(_axis(axis_id, spec, judged) for axis_id, spec in rules.axes.items())
    ip = rules.immunoparalysis
    hi = rules.hyperinflammation
    signs = tuple(judged[m] for m in (*hi.signs, *hi.cytopenias))
    cytopenia_lines = sum(judged[m].above for m in hi.cytopenias)
    settled = _settled_analytes(evidence, rules, judged)
    missing_groups = tuple(
        group.label
        for group in rules.cytokine_groups
        if not any(analyte in settled for analyte in group.analytes)
    )
    immunoparalysis = all(judged[m].above for m in ip.required)
    mals_like = [judged[m] for m in ip.excluded_by if judged[m].above]
    multiplex = bool(clinical.diagnostic_bar) and rules.settings[setting_id].multiplex
    subtype, decision, rationale = _decide(
        axes, rules, immunoparalysis and not mals_like, multiplex, missing_groups, setting_id
    )
    pattern = rules.patterns.get(subtype) if subtype else None
    return Assessment(
        subtype=subtype,
        decision=decision,
        rationale=rationale,
        evaluated_at=evidence.as_of,
        rules_version=rules.label,
        axes=axes,
        immune=tuple(judged[m] for m in (*ip.required, *ip.supportive)),
        setting_markers=tuple(judged[m] for m in clinical.decisive),
        signs=signs,
        cytopenia_lines=cytopenia_lines,
        missing_groups=missing_groups,
        near_misses=tuple(result for result in judged.values() if result.near_miss),
        notes=(*_notes(axes, judged, immunoparalysis, mals_like), *clinical.notes),
        setting=_view(applied, rules) if applied else None,
        other_settings=tuple(_view(f, rules) for f in others),
        handed_over_from=handed_over_from,
        state=clinical.state,
        decisive=clinical.decisive,
        undecided=clinical.undecided,
        pending=clinical.pending,
        reminders=clinical.reminders,
        not_applied=clinical.not_applied,
        diagnostic_bar=clinical.diagnostic_bar,
        advice=clinical.advice,
        scores=tuple(scores),
        facts=clinical.facts,
        lower_bounds=tuple(k for k, v in clinical.facts.items() if isinstance(v, AtLeast)),
        pattern_title=pattern.title if pattern else None,
        unusable=unusable_results(evidence, rules),
    )


def _judge_in(
    rules: Rules,
    evidence: Evidence,
    chart: ChartContext,
    scores: Sequence[ScoreView],
    after: Mapping[str, tuple[datetime, str]],
    applied: SettingFinding | None,
) -> tuple[dict[str, MarkerResult], SettingResult]:
    """The markers judged with one setting's thresholds, and that setting's rules."""
    setting_id = applied.setting if applied is not None else "unknown"
    judged = {
        marker_id: judge_marker(
            marker, evidence, rules.near_miss_fraction, setting=setting_id, after=after
        )
        for marker_id, marker in rules.markers.items()
    }
    clinical = judge_setting(rules, evidence, chart, scores, judged, applied, setting_id)
    return judged, clinical


def _hands_over(rules: Rules, setting_id: str, clinical: SettingResult) -> bool:
    """Whether the setting's rules leave the patient to the next recorded setting's: they may
    (precedence.hand_over), met no state, and left none undecided or outside its ages."""
    return (
        setting_id in rules.precedence.hand_over
        and clinical.state is None
        and not clinical.undecided
        and not clinical.not_applied
    )


def _view(finding: SettingFinding, rules: Rules) -> SettingView:
    return SettingView(
        setting=finding.setting,
        label=rules.settings[finding.setting].short,
        reason=finding.reason,
        when=finding.when,
        kind=finding.kind,
        day=finding.day,
        product=finding.product,
    )


def _decide(
    axes: tuple[AxisResult, ...],
    rules: Rules,
    immunoparalysis: bool,
    multiplex: bool,
    missing_groups: tuple[str, ...],
    setting_id: str = "unknown",
) -> tuple[Subtype | None, Decision, str]:
    if immunoparalysis:
        return (
            "immunoparalysis",
            "immunoparalysis",
            "Monocyte HLA-DR is in the immunoparalysis range without MALS-range ferritin.",
        )
    elevated = sorted((a for a in axes if a.elevated), key=lambda a: a.score, reverse=True)
    if len(elevated) == 1:
        axis = elevated[0]
        # A supportive marker past its threshold (CRP) elevates no axis on its own, and an axis
        # excluded by another's marker (IL-6 beside MALS-range ferritin) is not elevated: the
        # notes say which.
        why = f"Only the {axis.label} axis is elevated."
        return axis.subtype, "single-axis", why  # type: ignore[return-value]
    if elevated and not _one_population(elevated, rules):
        return "mixed-pattern", "unranked", _unranked(elevated, rules, setting_id)
    if elevated:
        first, second = elevated[0], elevated[1]
        if first.score >= rules.dominance_ratio * second.score:
            return (
                first.subtype,  # type: ignore[return-value]
                "leading-axis",
                f"The {first.label} axis leads ({first.score:.1f}× its threshold against "
                f"{second.score:.1f}× for {second.label}).",
            )
        names = " and ".join(a.label for a in elevated)
        return (
            "mixed-pattern",
            "mixed-pattern",
            f"{names} are elevated with no axis leading by {rules.dominance_ratio:g}×.",
        )
    if multiplex and missing_groups:
        return (
            "multiplex-assay-needed",
            "cytokines-missing",
            f"{rules.diagnostic_bar.label} is met without a recent result for: "
            + ", ".join(missing_groups)
            + ".",
        )
    return None, "no-signal", "No cytokine axis is elevated."


def _settled_analytes(
    evidence: Evidence, rules: Rules, judged: Mapping[str, MarkerResult]
) -> set[str]:
    """The analytes with a fresh result that settles a marker (or that no marker judges):
    "<100 pg/mL" against "> 80" settles nothing, and counts as no result (an empty answer
    would read as normal). One pass over the markers judged."""
    indeterminate: set[str] = set()
    decided: set[str] = set()
    for marker_id, marker in rules.markers.items():
        state = judged[marker_id].state
        (indeterminate if state == "indeterminate" else decided).add(marker.analyte)
    return {
        analyte
        for analyte in evidence.analytes
        if evidence.fresh(analyte) is not None
        and (analyte in decided or analyte not in indeterminate)
    }


def _strongest(axis: AxisResult) -> MarkerResult:
    """The pivotal marker that gives an elevated axis its score."""
    return max((m for m in axis.pivotal if m.above), key=lambda m: m.ratio or 0.0)


def _one_population(elevated: list[AxisResult], rules: Rules) -> bool:
    """Whether the axes' scores can be compared: value/threshold ratios mean the same only when
    the thresholds come from one study population, read here as one source that states its
    population (PROVIDE's ferritin and a COVID-19 IL-6 cut-off are not commensurable)."""
    sources = {_strongest(axis).source for axis in elevated}
    if len(sources) != 1:
        return False
    (only,) = sources
    return only is not None and only in rules.sources and bool(rules.sources[only].population)


def _unranked(elevated: list[AxisResult], rules: Rules, setting_id: str) -> str:
    """Each elevated axis with its own threshold, population and source, ranked by none."""
    names = " and ".join(axis.label for axis in elevated)
    why = (
        f"the thresholds of {names} come from different populations, and value/threshold "
        "ratios across populations cannot be compared."
    )
    head = (
        f"No clinical setting is recorded, so no cytokine axis is ranked: {why}"
        if setting_id == "unknown"
        else f"No cytokine axis is ranked: {why}"
    )
    lines = []
    for axis in elevated:
        for marker in (m for m in axis.pivotal if m.above):
            source = rules.sources.get(marker.source or "")
            population = (source.population or "").rstrip(". ") if source else ""
            lines.append(
                f"{axis.label}: {marker.label} {marker.threshold_text} "
                f"(population: {population or 'not stated'}; "
                f"source: {source.short if source else 'not stated'})"
            )
    return f"{head} " + "; ".join(lines) + "."


def _axis(axis_id: str, spec: AxisSpec, judged: dict[str, MarkerResult]) -> AxisResult:
    pivotal = tuple(judged[m] for m in spec.pivotal)
    excluded = tuple(m for m in spec.excluded_by if judged[m].above)
    above = [m for m in pivotal if m.above]
    elevated = bool(above) and not excluded
    return AxisResult(
        axis=axis_id,
        label=spec.label,
        subtype=spec.subtype,
        pivotal=pivotal,
        supportive=tuple(judged[m] for m in spec.supportive),
        elevated=elevated,
        excluded_by=excluded,
        score=max(m.ratio or 0.0 for m in above) if elevated else 0.0,
    )


def _notes(
    axes: tuple[AxisResult, ...],
    judged: dict[str, MarkerResult],
    immunoparalysis: bool,
    mals_like: list[MarkerResult],
) -> tuple[str, ...]:
    notes = []
    if immunoparalysis and mals_like:
        notes.append(
            "Monocyte HLA-DR is in the immunoparalysis range, but ferritin is in the MALS range; "
            "MALS takes precedence (PROVIDE)."
        )
    for axis in axes:
        if axis.excluded_by and any(m.above for m in axis.pivotal):
            blockers = ", ".join(judged[m].label for m in axis.excluded_by)
            notes.append(
                f"{axis.label} is above threshold, but {blockers} places the pattern on "
                "another axis."
            )
    il1 = next((a for a in axes if a.axis == "il1"), None)
    if il1 is not None:
        ferritin = [m for m in il1.pivotal if m.analyte == "ferritin" and m.above]
        il18_low = [m for m in il1.pivotal if m.analyte == "il18" and m.state == "below"]
        if ferritin and il18_low:
            notes.append(
                "Ferritin is in the MALS range while IL-18 is below the MAS range: discordant "
                "results; a repeat cytokine panel may clarify the pattern."
            )
    return tuple(notes)


# --- judging one marker -------------------------------------------------------------------------


def judge_marker(
    marker: Marker,
    evidence: Evidence,
    near_miss_fraction: float,
    *,
    setting: str = "unknown",
    after: Mapping[str, tuple[datetime, str]] | None = None,
) -> MarkerResult:
    """One marker against its criterion, in the applied setting.

    `after`: analyte -> (time a drug was given, why results after it are not counted).
    """
    base = {"marker": marker.id, "label": marker.label, "analyte": marker.analyte}
    if marker.settings and setting not in marker.settings:
        return MarkerResult(**base, state="not-applied")
    found = evidence.get(marker.analyte)
    if found is None:
        problems = _unusable(evidence, marker.analyte)
        if problems:
            return MarkerResult(**base, state="unusable", note=problems[0].reason)
        return MarkerResult(**base, state="missing")
    if not found.fresh:
        return MarkerResult(**base, state="stale", value=found.latest)
    value = _reading(marker.reading, found, evidence)
    given = (after or {}).get(marker.analyte)
    if given is not None and value.effective >= given[0]:
        return MarkerResult(**base, state="after-drug", value=value, note=given[1])
    criterion = next((c for c in marker.criteria if _applies(c, value)), None)
    if criterion is None:
        return MarkerResult(**base, state="no-criterion", value=value)
    threshold, text = _threshold(criterion, value)
    outcome = compare(value.value, value.comparator, criterion.comparison, threshold, value.upper)
    ratio = _ratio(value.value, threshold, criterion.comparison)
    state = "indeterminate" if outcome is None else ("above" if outcome else "below")
    return MarkerResult(
        **base,
        state=state,
        value=value,
        comparison=criterion.comparison,
        threshold=threshold,
        threshold_text=text,
        basis="threshold" if criterion.threshold is not None else "reference-range",
        ratio=ratio,
        near_miss=state == "below" and ratio is not None and ratio >= near_miss_fraction,
        source=criterion.source,
    )


def _reading(reading: str, found: AnalyteEvidence, evidence: Evidence) -> LabValue:
    if reading == "latest":
        return found.latest
    window = timedelta(hours=found.freshness_hours)
    recent = [
        v
        for v in found.history
        if v.family == found.latest.family and evidence.as_of - v.effective <= window
    ] or [found.latest]
    pick = max if reading == "max-in-window" else min
    return pick(recent, key=lambda v: v.value)


def _applies(criterion: Criterion, value: LabValue) -> bool:
    if criterion.family is not None:
        return criterion.family == value.family
    return value.reference_high is not None and value.reference_high > 0


_SYMBOL = {">": ">", ">=": "≥", "<": "<", "<=": "≤"}


def symbol(comparison: str) -> str:
    """A comparison as people write it: ">=" -> "≥"."""
    return _SYMBOL[comparison]


def _threshold(criterion: Criterion, value: LabValue) -> tuple[float, str]:
    """The threshold in the result's canonical unit, and as people read it (≥, ≤)."""
    sign = symbol(criterion.comparison)
    if criterion.threshold is not None:
        return criterion.threshold, f"{sign} {number(criterion.threshold)} {criterion.unit}"
    assert criterion.uln_multiple is not None and value.reference_high is not None
    threshold = criterion.uln_multiple * value.reference_high
    return threshold, (
        f"{sign} {criterion.uln_multiple:g} × upper reference limit "
        f"({number(threshold)} {value.unit})"
    )


def _ratio(value: float, threshold: float, comparison: str) -> float | None:
    """How far a result is towards (ratio < 1) or past (ratio > 1) firing its criterion."""
    if comparison in (">", ">="):
        return value / threshold if threshold > 0 else None
    return threshold / value if value > 0 else None


# Relative difference below which a converted result equals its threshold (float noise of a unit
# conversion is ~1e-15; no laboratory reports 10 significant digits).
_SAME = 1e-9


def compare(
    value: float,
    comparator: str | None,
    comparison: str,
    threshold: float,
    upper: float | None = None,
) -> bool | None:
    """Whether the true result meets `comparison threshold`; None when the report cannot tell.

    A result "<5" means the true value is below 5: it is certainly under a threshold of 80, but
    says nothing about a threshold of 3. A range result (value..upper) settles it only when the
    whole range falls on one side.
    """
    if math.isclose(value, threshold, rel_tol=_SAME):
        value = threshold  # unit conversion noise must not decide an at-threshold result
    low, low_open, high, high_open = _bounds(value, comparator)
    if upper is not None and high is None:
        high, high_open = upper, False
    if comparison in (">", ">="):
        strict = comparison == ">"
        if low is not None and (low > threshold or (low == threshold and (low_open or not strict))):
            return True
        if high is not None and (high < threshold or (high == threshold and (high_open or strict))):
            return False
        return None
    strict = comparison == "<"
    if high is not None and (high < threshold or (high == threshold and (high_open or not strict))):
        return True
    if low is not None and (low > threshold or (low == threshold and (low_open or strict))):
        return False
    return None


def _bounds(value: float, comparator: str | None) -> tuple[float | None, bool, float | None, bool]:
    """(low, low is exclusive, high, high is exclusive) of the interval a result stands for."""
    if comparator is None:
        return value, False, value, False
    if comparator == ">":
        return value, True, None, False
    if comparator == ">=":
        return value, False, None, False
    if comparator == "<":
        return None, False, value, True
    return None, False, value, False  # "<="


def number(value: float) -> str:
    """A threshold or result for people: 4420 -> "4,420", 38.55 -> "38.5", 0.0123 -> "0.0123"."""
    size = abs(value)
    if value == int(value) and size < 1e15:
        return f"{int(value):,}"
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"
