"""The assessment: what the rules concluded and why, in a form cards, audit and charts can show."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from cds_service.evidence import LabValue

MarkerState = Literal["above", "below", "indeterminate", "missing", "stale", "no-criterion"]
Subtype = Literal[
    "il1-driven",
    "ifng-driven",
    "il6-driven",
    "immunoparalysis",
    "mixed-pattern",
    "multiplex-assay-needed",
]
Decision = Literal[
    "immunoparalysis",  # low monocyte HLA-DR without MALS-range ferritin
    "single-axis",  # one cytokine axis elevated
    "leading-axis",  # several elevated, one leads by the dominance ratio
    "mixed-pattern",  # several elevated, none leads
    "cytokines-missing",  # signs of hyperinflammation, a pivotal cytokine group not measured
    "no-signal",  # nothing to say
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MarkerResult(_Frozen):
    """One marker judged against its criterion."""

    marker: str
    label: str
    analyte: str
    state: MarkerState
    value: LabValue | None = None  # the result judged (None when missing)
    comparison: str | None = None
    threshold: float | None = None  # canonical unit of the value
    threshold_text: str = ""  # e.g. "> 80 pg/mL" or "> 2 × upper reference limit (9.1 pg/mL)"
    basis: Literal["threshold", "reference-range"] | None = None
    ratio: float | None = None  # how far past the threshold: value/threshold (or inverse for "<")
    near_miss: bool = False
    source: str | None = None  # source id in the rules file

    @property
    def above(self) -> bool:
        return self.state == "above"


class AxisResult(_Frozen):
    axis: str
    label: str
    subtype: str
    pivotal: tuple[MarkerResult, ...]
    supportive: tuple[MarkerResult, ...]
    elevated: bool
    excluded_by: tuple[str, ...]  # markers above threshold that keep this axis from leading
    score: float  # largest ratio among pivotal markers above threshold; 0 when not elevated


class Assessment(_Frozen):
    subtype: Subtype | None
    decision: Decision
    rationale: str  # one sentence on why, for people
    evaluated_at: datetime
    rules_version: str
    axes: tuple[AxisResult, ...]
    immune: tuple[MarkerResult, ...]  # immunoparalysis markers
    signs: tuple[MarkerResult, ...]  # hyperinflammation signs and cytopenias, all judged
    cytopenia_lines: int
    missing_groups: tuple[str, ...]  # cytokine groups without a fresh result
    near_misses: tuple[MarkerResult, ...]
    notes: tuple[str, ...]  # discordant or noteworthy findings, for people

    @property
    def elevated_axes(self) -> tuple[AxisResult, ...]:
        return tuple(axis for axis in self.axes if axis.elevated)

    def axis(self, axis_id: str) -> AxisResult:
        return next(axis for axis in self.axes if axis.axis == axis_id)

    def markers(self) -> tuple[MarkerResult, ...]:
        """Every marker judged, each once, in reading order (axes, immune status, signs)."""
        seen: dict[str, MarkerResult] = {}
        for axis in self.axes:
            for result in (*axis.pivotal, *axis.supportive):
                seen.setdefault(result.marker, result)
        for result in (*self.immune, *self.signs):
            seen.setdefault(result.marker, result)
        return tuple(seen.values())

    def values_used(self) -> tuple[MarkerResult, ...]:
        """Markers that had a result (fresh or stale): the evidence table of a card."""
        return tuple(m for m in self.markers() if m.value is not None)
