"""The rules file as written by people (rules.yaml): its schema, checked before anything runs."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Comparison = Literal[">", ">=", "<", "<="]
Id = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
DrugClass = Literal[
    "il1-blockade", "il6-blockade", "ifng-blockade", "jak-inhibitor", "corticosteroid"
]
SUBTYPES = ("il1-driven", "ifng-driven", "il6-driven", "immunoparalysis", "mixed-pattern")


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceSpec(_Spec):
    citation: Text
    short: Text
    doi: Text | None = None
    pmid: Text | None = None
    verification: Text | None = None  # what could not be confirmed, said openly


class ParameterSpec(_Spec):
    value: float
    source: Id
    rationale: Text


class Parameters(_Spec):
    dominance_ratio: ParameterSpec
    near_miss_fraction: ParameterSpec
    cytopenia_min_lines: ParameterSpec
    high_dose_corticosteroid_mg_per_day: ParameterSpec

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


class TreatmentSpec(_Spec):
    recommend: Id | None
    fitting: list[DrugClass]
    fitting_from_elevated_axes: bool = False
    source: Id
    rationale: Text


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
    treatments: dict[Literal[SUBTYPES], TreatmentSpec]  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _every_axis_and_treatment(self) -> RulesSpec:
        if set(self.axes) != {"il1", "ifng", "il6"}:
            raise ValueError("axes must define il1, ifng and il6")
        missing = set(SUBTYPES) - set(self.treatments)
        if missing:
            raise ValueError(f"treatments missing for: {', '.join(sorted(missing))}")
        return self
