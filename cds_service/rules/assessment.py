"""The assessment: what the rules concluded and why, in a form cards, audit and charts can show."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from cds_service.evidence import LabValue
from cds_service.rules.schema import AvoidSpec

MarkerState = Literal[
    "above",
    "below",
    "indeterminate",
    "missing",
    "stale",
    "no-criterion",
    "after-drug",  # measured after a drug that changes what it means (IL-6 after tocilizumab)
    "unusable",  # a result was reported but could not be read (a data problem)
    "not-applied",  # the marker's population is another setting
]
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
    "unranked",  # several elevated, thresholds from different populations: not compared
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
    note: str | None = None  # why the result is not counted (after-drug, unusable)

    @property
    def above(self) -> bool:
        return self.state == "above"


class SettingView(_Frozen):
    """A clinical setting the chart supports, and why (for people)."""

    setting: str
    label: str  # "CAR-T/bispecific"
    reason: str  # "Procedure CAR-T infusion (XW033H7), 2026-11-28"
    when: datetime | None = None
    kind: str | None = None
    day: int | None = None  # iec: days since infusion
    product: str | None = None

    @property
    def heading(self) -> str:
        """ "CAR-T/bispecific, day 3" -- what the card summary names."""
        return self.label + (f", day {self.day}" if self.day is not None else "")


class ScoreView(_Frozen):
    """A score or criteria set as the card and profile show it."""

    id: str
    label: str
    value: float | None  # None: cannot be computed
    text: str  # one line for people: "ASTCT grade 2 (fever 39.1 °C; hypotension without ...)"
    missing: tuple[str, ...] = ()  # inputs that were unknown
    source: str | None = None
    met: tuple[
        str, ...
    ] = ()  # the items that counted, with the value used: "Fever > 38.0 °C: 39.2"
    lower_bound: bool = False  # the value may be higher: some inputs were unknown
    population: str | None = None  # the ages and patients the score was derived or validated in
    verify: str | None = None  # what the rules file marks as not confirmed from the source
    min_years: int | None = None  # younger patients: a state decided by the score is not applied
    outside: str | None = None  # what applies instead for them
    fever_days: float | None = None  # ASTCT: how long the current fever has lasted
    fever_days_lower_bound: bool = False  # older temperatures missing: it may have lasted longer


class StateView(_Frozen):
    """The hyperinflammation state that licenses the setting's advice."""

    id: str
    label: str
    source: str
    topic_code: str
    topic_display: str
    indicator: Literal["info", "warning"] = "info"


# alternative: not drafted, an equal alternative to a drug drafted now or given recently;
# outside-ages: not drafted, the patient is younger than the rule's population
AdviceStatus = Literal[
    "suggest", "caution", "already-given", "removed", "advise", "alternative", "outside-ages"
]


class AdviceView(_Frozen):
    """One action of the applied setting's rules, after the safety checks."""

    rule: str
    drug: str | None  # drug id in the rules file; None: an action without a draft order
    action: str  # for people: the drug's name or the action text
    status: AdviceStatus
    source: str
    population: str
    rationale: str
    findings: tuple[str, ...] = ()  # safety findings, "already given on ..."
    # Said beside the advice, never a reason for its status: a label warning the standard is
    # given under, another corticosteroid on the chart
    notes: tuple[str, ...] = ()
    verify: str | None = None
    # The rule has an age limit the chart cannot check (no birth date): said beside the draft.
    age_unchecked: str | None = None

    @property
    def drafted(self) -> bool:
        return self.status == "suggest" and self.drug is not None


class Reminder(_Frozen):
    """A rule of the applied setting against a drug, said on its card whenever it holds."""

    rule: str
    short: str  # a few words, for the summary
    reason: str
    source: str

    @classmethod
    def of(cls, avoid: AvoidSpec) -> Reminder:
        return cls(rule=avoid.id, short=avoid.short, reason=avoid.reason, source=avoid.source)


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
    # Markers of the setting rules (IEC-HS ferritin, transaminitis, SpO₂, label limits): a card
    # shows the ones its rules read, with their thresholds.
    setting_markers: tuple[MarkerResult, ...] = ()
    signs: tuple[MarkerResult, ...]  # hyperinflammation signs and cytopenias, all judged
    cytopenia_lines: int
    missing_groups: tuple[str, ...]  # cytokine groups without a fresh result
    near_misses: tuple[MarkerResult, ...]
    notes: tuple[str, ...]  # discordant or noteworthy findings, for people
    # The clinical setting and its rules (defaults: an assessment of labs alone).
    setting: SettingView | None = None  # the setting whose rules were applied; None: unknown
    other_settings: tuple[SettingView, ...] = ()  # also recorded, rules not applied
    # A setting of `other_settings` whose rules were judged first and met no state, so the
    # next recorded setting's rules apply (rules.yaml precedence.hand_over).
    handed_over_from: str | None = None
    state: StateView | None = None  # the hyperinflammation state found, if any
    decisive: tuple[str, ...] = ()  # marker ids the applied state and advice read
    undecided: tuple[str, ...] = ()  # states that could not be judged, and why
    pending: tuple[str, ...] = ()  # advice of the state found that could not be judged, and why
    reminders: tuple[Reminder, ...] = ()
    # States decided by a score whose population excludes the patient's recorded age, and why.
    not_applied: tuple[str, ...] = ()
    diagnostic_bar: bool | None = None  # the lower bar of the pattern and multiplex cards
    advice: tuple[AdviceView, ...] = ()
    scores: tuple[ScoreView, ...] = ()
    facts: dict[str, float | bool | None] = {}
    lower_bounds: tuple[str, ...] = ()  # facts that are lower bounds (a grade "≥ 1")
    pattern_title: str | None = None  # the cytokine pattern as people read it
    unusable: tuple[str, ...] = ()  # results that were reported but could not be read

    @property
    def elevated_axes(self) -> tuple[AxisResult, ...]:
        return tuple(axis for axis in self.axes if axis.elevated)

    def axis(self, axis_id: str) -> AxisResult:
        return next(axis for axis in self.axes if axis.axis == axis_id)

    def markers(self) -> tuple[MarkerResult, ...]:
        """Every marker judged, each once, in reading order (axes, immune status, signs, setting
        rules)."""
        seen: dict[str, MarkerResult] = {}
        for axis in self.axes:
            for result in (*axis.pivotal, *axis.supportive):
                seen.setdefault(result.marker, result)
        for result in (*self.immune, *self.signs, *self.setting_markers):
            seen.setdefault(result.marker, result)
        return tuple(seen.values())

    def values_used(self) -> tuple[MarkerResult, ...]:
        """Markers that had a result (fresh or stale): the evidence table of a card."""
        return tuple(m for m in self.markers() if m.value is not None)
