"""The rules file as written by people (rules.yaml): its schema, checked before anything runs."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Comparison = Literal[">", ">=", "<", "<="]
Id = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
DrugClass = Literal[
    "il1-blockade",
    "il6-blockade",
    "ifng-blockade",
    "jak-inhibitor",
    "corticosteroid",
    "cytotoxic",
]
SUBTYPES = ("il1-driven", "ifng-driven", "il6-driven", "immunoparalysis", "mixed-pattern")
SETTINGS = ("iec", "covid19", "sepsis", "stills", "hlh", "unknown")
SettingId = Literal["iec", "covid19", "sepsis", "stills", "hlh", "unknown"]
# A condition on a fact: "crs_grade >= 2", "mals", "not hypoxia" (checked by the loader).
Condition = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
TopicCode = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]{1,100}$")]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceSpec(_Spec):
    citation: Text
    short: Text
    doi: Text | None = None
    pmid: Text | None = None
    verification: Text | None = None  # what could not be confirmed, said openly
    url: Text | None = None  # labels and guidelines without a DOI
    population: Text | None = None  # who the source's findings hold for


class ParameterSpec(_Spec):
    value: float
    source: Id
    rationale: Text


class Parameters(_Spec):
    dominance_ratio: ParameterSpec
    near_miss_fraction: ParameterSpec
    cytopenia_min_lines: ParameterSpec

    @model_validator(mode="after")
    def _sane(self) -> Parameters:
        if self.dominance_ratio.value < 1:
            raise ValueError("dominance_ratio must be at least 1")
        if not 0 < self.near_miss_fraction.value < 1:
            raise ValueError("near_miss_fraction must be between 0 and 1")
        return self


class CriterionSpec(_Spec):
    """A threshold in a unit (the unit picks the family), or a multiple of the upper limit."""

    comparison: Comparison
    value: float | None = None
    unit: Text | None = None
    uln_multiple: float | None = Field(default=None, gt=0)
    source: Id

    @model_validator(mode="after")
    def _threshold_or_uln(self) -> CriterionSpec:
        has_threshold = self.value is not None or self.unit is not None
        if has_threshold == (self.uln_multiple is not None):
            raise ValueError("give either value and unit, or uln_multiple")
        if has_threshold and (self.value is None or self.unit is None):
            raise ValueError("a threshold needs both value and unit")
        if self.uln_multiple is not None and self.comparison not in (">", ">="):
            raise ValueError("uln_multiple criteria compare with > or >=")
        return self


class MarkerSpec(_Spec):
    analyte: Id
    label: Text
    criteria: list[CriterionSpec] = Field(min_length=1)
    rationale: Text
    # Which result is judged: the latest, or the extreme within the freshness window (fever is
    # a maximum over the last day, not the last reading).
    reading: Literal["latest", "max-in-window", "min-in-window"] = "latest"
    # Settings whose population the criteria come from; the marker is judged only there.
    settings: list[SettingId] = []


class AxisSpec(_Spec):
    label: Text
    subtype: Literal["il1-driven", "ifng-driven", "il6-driven"]
    pivotal: list[Id] = Field(min_length=1)
    supportive: list[Id] = []
    excluded_by: list[Id] = []


class ImmunoparalysisSpec(_Spec):
    required: list[Id] = Field(min_length=1)
    excluded_by: list[Id] = []
    supportive: list[Id] = []
    source: Id


class HyperinflammationSpec(_Spec):
    signs: list[Id] = Field(min_length=1)
    cytopenias: list[Id] = []
    source: Id


class CytokineGroupSpec(_Spec):
    label: Text
    analytes: list[Id] = Field(min_length=1)


class DrugSpec(_Spec):
    class_: DrugClass = Field(alias="class")
    rxnorm: Annotated[str, StringConstraints(pattern=r"^[0-9]+$")]
    names: list[Text] = Field(min_length=1)
    prednisone_equivalent: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _steroids_have_potency(self) -> DrugSpec:
        if (self.class_ == "corticosteroid") != (self.prednisone_equivalent is not None):
            raise ValueError("prednisone_equivalent is required for, and only for, corticosteroids")
        return self


class PatternSpec(_Spec):
    """How people read a cytokine pattern, and the drug class acting on its axis."""

    name: Text  # short: "IL-6-predominant"
    title: Text  # "IL-6-predominant hyperinflammation"
    drug_class: DrugClass | None
    source: Id
    rationale: Text


class AtLeastSpec(_Spec):
    count: int = Field(ge=1)
    of: list[Id] = Field(min_length=1)


class CriteriaSetSpec(_Spec):
    label: Text
    all: list[Id] = []
    none: list[Id] = []
    at_least: AtLeastSpec | None = None
    source: Id
    population: Text


class OptionSpec(_Spec):
    value: bool | float
    source: Id
    rationale: Text


class PrecedenceSpec(_Spec):
    order: list[SettingId] = Field(min_length=1)
    source: Id
    rationale: Text
    # Settings whose rules, when they meet no state and leave none undecided, hand over to the
    # next setting recorded (in `order`) whose rules meet one.
    hand_over: list[SettingId] = []
    # The settings they may hand over to (sepsis and HLH rules must not judge a CAR-T patient).
    hand_over_to: list[SettingId] = []
    hand_over_rationale: Text | None = None


class TopicSpec(_Spec):
    code: TopicCode
    display: Text


class AgesSpec(_Spec):
    """The ages the rule's population (trial, label) covers. A patient recorded as younger is
    told what the rule says for its population, hedged, and gets no draft order; a patient
    whose age is not recorded keeps the draft, and the card says the age could not be checked."""

    min_years: int = Field(ge=1)
    source: Id
    population: Text  # who the rule holds for: "adults (RECOVERY; US label: hospitalised adults)"
    outside: Text  # what the card says to a younger patient's clinician, why no draft


class StateSpec(_Spec):
    """A hyperinflammation state of a setting: an exact, published rule."""

    id: Id
    label: Text
    short: Text  # for the card summary; {fact} is replaced by the fact's value
    when: list[Condition] = Field(min_length=1)
    source: Id
    topic: TopicSpec
    indicator: Literal["info", "warning"] = "info"  # warning: the state itself warns
    # The ages of the population the rule was derived in (PROVIDE: adults): a patient recorded
    # as younger is not judged by it (neither met nor undecided), and the card says why.
    ages: AgesSpec | None = None


class AlreadyGivenSpec(_Spec):
    """For a corticosteroid: another corticosteroid counts as "already given" only from this
    daily dose (prednisone-equivalent mg, by the `drugs` equivalences)."""

    min_prednisone_mg: float = Field(gt=0)
    source: Id
    rationale: Text


class AlternativesSpec(_Spec):
    """Drugs that are equal alternatives to the advice's drug: never drafted together, and
    not drafted when one of them was given recently."""

    drugs: list[Id] = Field(min_length=1)
    source: Id
    rationale: Text


class AdviceSpec(_Spec):
    """What to do in a state: draft `drug`, or (without a drug) say `action`."""

    id: Id
    state: Id | list[Id]  # the state, or the states, it applies in
    drug: Id | None = None
    action: Text | None = None
    when: list[Condition] = []
    repeat: bool = False  # repeated doses are the treatment (tocilizumab in CRS): no "already on"
    already_given: AlreadyGivenSpec | None = None  # without it: the same drug or class counts
    alternatives: AlternativesSpec | None = None
    ages: AgesSpec | None = None  # without it: no age limit in the rule's population
    source: Id
    population: Text
    rationale: Text
    verify: Text | None = None  # what must be confirmed before a hospital relies on it

    @property
    def states(self) -> list[str]:
        return [self.state] if isinstance(self.state, str) else list(self.state)

    @model_validator(mode="after")
    def _drug_or_action(self) -> AdviceSpec:
        if (self.drug is None) == (self.action is None):
            raise ValueError("give either drug or action")
        return self


class AvoidSpec(_Spec):
    """A sourced rule that an order does not fit the setting: the only mismatch warnings."""

    id: Id
    drugs: list[Id] = []
    classes: list[DrugClass] = []
    when: list[Condition] = []
    min_prednisone_mg: float | None = Field(default=None, gt=0)  # per day; corticosteroids only
    # caution: a hedged caution (no delete suggestion) where the evidence is about a dose or a
    # subgroup rather than the drug itself
    outcome: Literal["mismatch", "caution"] = "mismatch"
    # The youngest age the rule's evidence covers: a patient recorded as younger is not judged
    # by it (without a recorded age the rule applies).
    min_years: int | None = Field(default=None, ge=1)
    instead: Id | None = None
    # Only orders given for this setting's disease (the order's reasonCode/reasonReference):
    # an order for another stated indication is not judged, and one that names none gets the
    # hedged caution `unstated` instead of a mismatch.
    indication: SettingId | None = None
    unstated: Text | None = None
    source: Id
    short: Text  # the reason in a few words, for the card summary
    reason: Text
    # Said on the setting's patient-view card too, whenever `when` holds: a rule against a
    # drug the results seem to invite (IL-6 blockade for a high IL-6 in sepsis).
    remind: bool = False

    @model_validator(mode="after")
    def _names_drugs(self) -> AvoidSpec:
        if not self.drugs and not self.classes:
            raise ValueError("name the drugs or drug classes the rule is about")
        if (self.indication is None) != (self.unstated is None):
            raise ValueError("`indication` and `unstated` go together")
        return self


class SettingSpec(_Spec):
    label: Text
    short: Text
    multiplex: bool
    scores: list[Id] = []  # the scores its cards show
    states: list[StateSpec]
    advice: list[AdviceSpec]
    avoid: list[AvoidSpec]


class DiagnosticBarSpec(_Spec):
    label: Text
    when: list[Condition] = Field(min_length=1)
    source: Id
    population: Text


class SafetySpec(_Spec):
    id: Id
    drugs: list[Id] = Field(min_length=1)
    settings: list[SettingId] = []
    when: list[Condition] = Field(min_length=1)
    unknown: Literal["ignore", "caution"] = "ignore"
    # note: said beside the draft, which stays (a label warning the setting's standard of care
    # is given under, as tocilizumab for CRS with an infection recorded)
    outcome: Literal["caution", "remove", "note"]
    source: Id
    finding: Text


class WeightBandSpec(_Spec):
    """The largest single dose for the weights of one band (none given: every weight), per kg
    of body weight or fixed. Where several bands hold, the largest of their doses is the limit."""

    over_kg: float | None = Field(default=None, ge=0)  # weight above this
    below_kg: float | None = Field(default=None, gt=0)  # weight below this
    mg_per_kg: float | None = Field(default=None, gt=0)
    mg: float | None = Field(default=None, gt=0)
    source: Id | None = None  # the limit's own source unless given

    @model_validator(mode="after")
    def _one_dose(self) -> WeightBandSpec:
        if (self.mg_per_kg is None) == (self.mg is None):
            raise ValueError("give either mg_per_kg or mg")
        bounded = self.over_kg is not None and self.below_kg is not None
        if bounded and self.over_kg >= self.below_kg:  # type: ignore[operator]
            raise ValueError("over_kg must be below below_kg")
        return self

    def holds(self, kg: float) -> bool:
        return (self.over_kg is None or kg > self.over_kg) and (
            self.below_kg is None or kg < self.below_kg
        )

    def dose_mg(self, kg: float) -> float:
        return self.mg if self.mg is not None else (self.mg_per_kg or 0.0) * kg

    def text(self) -> str:
        """For people: "8 mg/kg", "600 mg over 65 kg", "12 mg/kg under 30 kg"."""
        dose = f"{self.mg_per_kg:g} mg/kg" if self.mg is None else f"{self.mg:g} mg"
        over = f" over {self.over_kg:g} kg" if self.over_kg is not None else ""
        under = f" under {self.below_kg:g} kg" if self.below_kg is not None else ""
        return f"{dose}{over}{under}"


class RoundingSpec(_Spec):
    """How far above a weight-based dose an order may lie (rounding to whole vials)."""

    fraction: float = Field(ge=0, lt=1)
    source: Id


class DoseLimitSpec(_Spec):
    """The label's largest single dose of a drug in the settings named (none: all), fixed
    (`max_mg`) or by body weight (`by_weight`): an order above it gets a caution naming the dose
    ordered and the limit."""

    id: Id
    drugs: list[Id] = Field(min_length=1)
    settings: list[SettingId] = []
    max_mg: float | None = Field(default=None, gt=0)  # one dose (one infusion)
    by_weight: list[WeightBandSpec] = []
    rounding: RoundingSpec | None = None  # by_weight only
    source: Id
    population: Text
    finding: Text

    @model_validator(mode="after")
    def _one_kind(self) -> DoseLimitSpec:
        if (self.max_mg is None) == (not self.by_weight):
            raise ValueError("give either max_mg or by_weight")
        if self.rounding is not None and not self.by_weight:
            raise ValueError("rounding applies to by_weight limits only")
        if self.by_weight:
            # Every weight needs a band: a weight no band holds would never be judged.
            bounds = {b for band in self.by_weight for b in (band.over_kg, band.below_kg) if b}
            probes = [0.001, 1000.0, *(b + d for b in bounds for d in (-1e-6, 0.0, 1e-6))]
            bare = [kg for kg in probes if kg > 0 and not any(b.holds(kg) for b in self.by_weight)]
            if bare:
                raise ValueError(f"no band of by_weight holds for {min(bare):g} kg")
        return self


class DrugEffectSpec(_Spec):
    analyte: Id
    drug: Id
    source: Id
    note: Text


class StandardOfCareSpec(_Spec):
    classes: list[DrugClass]
    source: Id
    rationale: Text


class NeverFlagSpec(_Spec):
    drugs: list[Id]
    source: Id


class RulesSpec(_Spec):
    version: Text
    sources: dict[Id, SourceSpec] = Field(min_length=1)
    parameters: Parameters
    markers: dict[Id, MarkerSpec] = Field(min_length=1)
    axes: dict[Literal["il1", "ifng", "il6"], AxisSpec]
    immunoparalysis: ImmunoparalysisSpec
    hyperinflammation: HyperinflammationSpec
    cytokine_groups: list[CytokineGroupSpec] = Field(min_length=1)
    drugs: dict[Id, DrugSpec] = Field(min_length=1)
    patterns: dict[Literal[SUBTYPES], PatternSpec]  # type: ignore[valid-type]
    criteria_sets: dict[Id, CriteriaSetSpec] = {}
    options: dict[Id, OptionSpec] = {}
    precedence: PrecedenceSpec
    settings: dict[SettingId, SettingSpec]
    diagnostic_bar: DiagnosticBarSpec
    safety: list[SafetySpec] = []
    dose_limits: list[DoseLimitSpec] = []
    never_flag: NeverFlagSpec
    drug_effects: list[DrugEffectSpec] = []
    standard_of_care: StandardOfCareSpec

    @model_validator(mode="after")
    def _complete(self) -> RulesSpec:
        if set(self.axes) != {"il1", "ifng", "il6"}:
            raise ValueError("axes must define il1, ifng and il6")
        missing = set(SUBTYPES) - set(self.patterns)
        if missing:
            raise ValueError(f"patterns missing for: {', '.join(sorted(missing))}")
        absent = set(SETTINGS) - set(self.settings)
        if absent:
            raise ValueError(f"settings missing: {', '.join(sorted(absent))}")
        order = self.precedence.order
        if set(order) != set(SETTINGS) - {"unknown"} or len(order) != len(set(order)):
            raise ValueError("precedence must order every setting except unknown, once")
        return self
