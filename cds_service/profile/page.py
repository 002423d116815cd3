"""The profile page: a stored profile -> HTML with inline SVG charts (Jinja, autoescaped).

No HTTP here (api/profile.py serves it). The HTML loads nothing from anywhere: styles are inline,
charts are inline SVG, and there is no script, so it works offline and under a CSP of
`default-src 'none'`. A stored profile never changes, so rendered pages are cached per
assessment id.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from cds_service.cards.templates import lab_value_text, result_text, unit_text, when_text
from cds_service.profile import charts
from cds_service.profile.snapshot import AnalyteHistory, StoredProfile
from cds_service.rules.assessment import Assessment, AxisResult, MarkerResult, ScoreView

PAGE_CACHE_SIZE = 64


def _title(a: Assessment) -> str:
    """The page title: the setting and state applied, else the pattern (rules.yaml names)."""
    setting = a.setting.heading if a.setting else "No clinical setting recorded"
    if a.state is not None:
        return f"{setting}: the recorded data meet the {a.state.label}"
    if a.decision == "unranked":
        return f"{setting}: several cytokine axes above threshold, not ranked"
    if a.pattern_title:
        return f"{setting}: pattern consistent with {a.pattern_title}"
    if a.subtype == "multiplex-assay-needed":
        return f"{setting}: recorded results suggest hyperinflammation; no recent cytokine result"
    return f"{setting}: no cytokine pattern named"


DECISIONS = {
    "immunoparalysis": "Immunoparalysis rule: monocyte HLA-DR in the immunoparalysis range "
    "without MALS-range ferritin",
    "single-axis": "Single-axis rule: one cytokine axis above threshold",
    "leading-axis": "Leading-axis rule: several axes above threshold, one leads by the "
    "dominance ratio",
    "mixed-pattern": "Mixed-pattern rule: several axes above threshold, none leads",
    "unranked": "Unranked: several axes above threshold whose thresholds come from different "
    "populations, so their ratios are not compared",
    "cytokines-missing": "Multiplex rule: the diagnostic bar is met while a pivotal cytokine "
    "group has no recent result",
    "no-signal": "No rule fired",
}
VERDICTS = {
    "above": "past threshold",
    "below": "not past threshold",
    "indeterminate": "cannot tell (result is a bound)",
    "stale": "too old to count",
    "missing": "no result",
    "no-criterion": "no threshold for this unit",
    "after-drug": "not counted (measured after a drug that changes it)",
    "unusable": "could not be read",
    "not-applied": "not applied in this setting",
}
IMMUNE_TITLE = "Immune status (monocyte HLA-DR, lymphocytes)"
SIGNS_TITLE = "Signs of hyperinflammation and cytopenias (HLH-2004)"


@dataclass(frozen=True)
class MarkerRow:
    """One line of the values table."""

    group: str
    label: str
    role: str  # "pivotal", "supportive", ""
    result: str
    measured: str
    threshold: str
    ratio: str
    verdict: str
    state: str
    source: str | None


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    caption: str
    svg: Markup


class ProfilePages:
    """Renders profile pages and the refusal page; keeps the last pages rendered."""

    def __init__(
        self,
        notice: str,
        cache_size: int = PAGE_CACHE_SIZE,
        setting_scores: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.notice = notice
        # The scores each setting's cards show (rules file): a score is valid in its population.
        self.setting_scores = setting_scores
        self.env = Environment(
            loader=PackageLoader("cds_service.profile", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["unit_text"] = unit_text
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def cached(self, assessment_id: str) -> str | None:
        with self._lock:
            page = self._cache.get(assessment_id)
            if page is not None:
                self._cache.move_to_end(assessment_id)
            return page

    def profile(self, assessment_id: str, stored: StoredProfile) -> str:
        cached = self.cached(assessment_id)
        if cached is not None:
            return cached
        page = self.render(stored)
        with self._lock:
            self._cache[assessment_id] = page
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return page

    def render(self, stored: StoredProfile) -> str:
        a = stored.assessment
        groups = list(_groups(a))
        rows = [row for title, markers in groups for row in self._rows(title, markers, stored)]
        template = self.env.get_template("profile.html.j2")
        return template.render(
            title=_title(a),
            assessment=a,
            scores=self._scores(a),
            decision=DECISIONS[a.decision],
            evaluated=f"{a.evaluated_at:%Y-%m-%d %H:%M} UTC",
            axis_status={axis.axis: _axis_status(axis, a) for axis in a.axes},
            ratio_charts=[self._ratio_chart(i, t, m, stored) for i, (t, m) in enumerate(groups)],
            history_charts=list(self._history_charts(stored, groups)),
            rows=rows,
            sources=stored.sources,
            notice=self.notice,
            near_misses=[f"{m.label} {self._result(m)}" for m in a.near_misses if m.value],
        )

    def _scores(self, a: Assessment) -> list[ScoreView]:
        if self.setting_scores is None:
            return list(a.scores)
        wanted = self.setting_scores.get(a.setting.setting if a.setting else "unknown", ())
        return [score for score in a.scores if score.id in wanted]

    def refused(self, status: Literal[403, 404, 503]) -> str:
        return self.env.get_template("refused.html.j2").render(status=status)

    def _rows(
        self, group: str, markers: Iterable[tuple[MarkerResult, str]], stored: StoredProfile
    ) -> Iterable[MarkerRow]:
        as_of = stored.assessment.evaluated_at
        for marker, role in markers:
            value = marker.value
            placed = stored.stale_placement.get(marker.marker)
            threshold_text = (placed or marker).threshold_text or (
                criteria.text if (criteria := stored.criteria.get(marker.marker)) else "—"
            )
            ratio = _ratio(marker, placed)
            yield MarkerRow(
                group=group,
                label=marker.label,
                role=role,
                result=self._result(marker),
                measured=when_text(value.effective, as_of, "before") if value else "—",
                threshold=unit_text(threshold_text),
                ratio=f"{ratio:#.3g}×" if ratio is not None else "—",
                verdict=VERDICTS[marker.state] + (" (near)" if marker.near_miss else ""),
                state=marker.state,
                source=marker.source or (placed.source if placed else None),
            )

    @staticmethod
    def _result(marker: MarkerResult) -> str:
        return "no result" if marker.value is None else lab_value_text(marker.value)

    def _ratio_chart(
        self,
        index: int,
        title: str,
        markers: list[tuple[MarkerResult, str]],
        stored: StoredProfile,
    ) -> Chart:
        rows = []
        spoken = []
        for marker, role in markers:
            placed = stored.stale_placement.get(marker.marker)
            ratio = _ratio(marker, placed)
            comparison = (
                marker.comparison
                or (placed.comparison if placed else None)
                or (c.comparison if (c := stored.criteria.get(marker.marker)) else ">")
            )
            verdict = VERDICTS[marker.state]
            parts = [self._result(marker)] if marker.value else []
            if ratio is not None:
                parts.append(f"{ratio:#.3g}×")
            parts.append(verdict)
            label = marker.label + (" (supportive)" if role == "supportive" else "")
            rows.append(
                charts.RatioRow(
                    label=label,
                    state=marker.state,
                    ratio=ratio,
                    fires_above=comparison in (">", ">="),
                    bound=_bound(marker),
                    text=" · ".join(parts),
                )
            )
            spoken.append(f"{label}: {', '.join(parts)}")
        description = f"{title}. " + "; ".join(spoken) + "."
        svg = charts.ratio_chart(title, rows, description)
        return Chart(f"axis-{index}", title, description, Markup(svg))  # noqa: S704 (matplotlib)

    def _history_charts(
        self, stored: StoredProfile, groups: list[tuple[str, list[tuple[MarkerResult, str]]]]
    ) -> Iterable[Chart]:
        a = stored.assessment
        seen: set[str] = set()
        for _, markers in groups:
            for marker, _role in markers:
                analyte = marker.analyte
                history = stored.history.get(analyte)
                if analyte in seen or history is None or not history.points:
                    continue
                seen.add(analyte)
                yield self._history_chart(history, a, stored)

    def _history_chart(
        self, history: AnalyteHistory, a: Assessment, stored: StoredProfile
    ) -> Chart:
        family = history.points[0].family
        unit = history.points[0].unit
        drawn = [p for p in history.points if p.family == family]
        points = [
            charts.SeriesPoint(
                at=p.effective,
                value=p.value,
                bound=_bound_of(p.comparator) if p.upper is None else None,
                preliminary=p.status == "preliminary",
            )
            for p in drawn
        ]
        thresholds: dict[float, charts.SeriesThreshold] = {}
        for marker in a.markers():
            judged = stored.stale_placement.get(marker.marker) or marker
            if (
                marker.analyte == history.analyte
                and judged.threshold is not None
                and judged.value is not None
                and judged.value.family == family
                and judged.threshold not in thresholds
            ):
                # The threshold first: a long label is cut at its end, in the chart only.
                thresholds[judged.threshold] = charts.SeriesThreshold(
                    f"{unit_text(judged.threshold_text)}: {marker.label}", judged.threshold
                )
        latest = drawn[0]
        caption = (
            f"{history.display} over the evidence window: {len(drawn)} result(s), latest "
            f"{result_text(latest.value, latest.comparator, latest.upper, latest.unit)} at "
            f"{when_text(latest.effective, a.evaluated_at, 'before')}"
        )
        if thresholds:
            caption += "; thresholds: " + ", ".join(t.label for t in thresholds.values())
        others = len(history.points) - len(drawn)
        if others:
            caption += f"; {others} result(s) in another unit not drawn"
        if history.left_out:
            caption += f"; {history.left_out} older result(s) not shown"
        svg = charts.history_chart(
            history.display,
            unit_text(unit),
            points,
            list(thresholds.values()),
            a.evaluated_at,
            history.freshness_hours,
            caption + ".",
        )
        return Chart(f"history-{history.analyte}", history.display, caption + ".", Markup(svg))  # noqa: S704


def _groups(a: Assessment) -> Iterable[tuple[str, list[tuple[MarkerResult, str]]]]:
    """The charted groups: the three cytokine axes, immune status, signs of hyperinflammation."""
    for axis in a.axes:
        yield (
            axis.label,
            [(m, "pivotal") for m in axis.pivotal] + [(m, "supportive") for m in axis.supportive],
        )
    if a.immune:
        yield IMMUNE_TITLE, [(m, "") for m in a.immune]
    if a.signs:
        yield SIGNS_TITLE, [(m, "") for m in a.signs]


def _axis_status(axis: AxisResult, a: Assessment) -> str:
    if axis.elevated:
        return f"elevated: strongest pivotal marker {axis.score:#.3g}× its threshold"
    if axis.excluded_by:
        labels = {m.marker: m.label for m in a.markers()}
        blockers = ", ".join(labels.get(m, m) for m in axis.excluded_by)
        if any(m.above for m in axis.pivotal):
            return f"above threshold, but {blockers} places the pattern on another axis"
        return "not elevated"
    return "not elevated"


def _ratio(marker: MarkerResult, placed: MarkerResult | None) -> float | None:
    """Result ÷ threshold (also for "<" criteria, where below 1 fires)."""
    judged = placed or marker
    if judged.value is None or judged.threshold is None or judged.threshold <= 0:
        return None
    if judged.value.value <= 0:
        return None
    return judged.value.value / judged.threshold


def _bound(marker: MarkerResult) -> Literal["<", ">"] | None:
    value = marker.value
    if value is None or value.upper is not None:
        return None
    return _bound_of(value.comparator)


def _bound_of(comparator: str | None) -> Literal["<", ">"] | None:
    if comparator in ("<", "<="):
        return "<"
    if comparator in (">", ">="):
        return ">"
    return None
