"""Load the rules file once at start-up: validate it, resolve references, convert thresholds.

After loading, every threshold is in the canonical unit of its analyte's unit family, so the
engine compares numbers without converting anything on the hot path.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from cds_service.evidence import Catalog
from cds_service.rules.conditions import COMPUTED_FACTS, Condition, parse_condition
from cds_service.rules.schema import (
    AxisSpec,
    Comparison,
    CriteriaSetSpec,
    CriterionSpec,
    CytokineGroupSpec,
    DiagnosticBarSpec,
    DoseLimitSpec,
    DrugEffectSpec,
    DrugSpec,
    HyperinflammationSpec,
    ImmunoparalysisSpec,
    NeverFlagSpec,
    OptionSpec,
    PatternSpec,
    PrecedenceSpec,
    RulesSpec,
    SafetySpec,
    SettingSpec,
    SourceSpec,
    StandardOfCareSpec,
)
from cds_service.yamlfile import ConfigFileError, Loc, YamlDocument

# The analyte of the catalog whose newest fresh result weight-based dose limits read.
BODY_WEIGHT = "body_weight"


@dataclass(frozen=True, slots=True)
class Criterion:
    comparison: Comparison
    source: str
    family: str | None = None  # threshold criteria apply to results of this unit family
    threshold: float | None = None  # in the family's canonical unit
    unit: str | None = None  # that canonical unit
    written: str = ""  # the threshold as the rules file writes it, e.g. "4420 ng/mL"
    uln_multiple: float | None = None  # else: a multiple of the result's upper reference limit


@dataclass(frozen=True, slots=True)
class Marker:
    id: str
    analyte: str
    label: str
    criteria: tuple[Criterion, ...]
    rationale: str
    reading: str
    settings: frozenset[str] = frozenset()  # empty: every setting


@dataclass(frozen=True)
class Rules:
    version: str
    digest: str  # sha256 of the file, so an audit row names the exact rules that ran
    sources: dict[str, SourceSpec]
    dominance_ratio: float
    near_miss_fraction: float
    cytopenia_min_lines: int
    markers: dict[str, Marker]
    axes: dict[str, AxisSpec]  # il1, ifng, il6
    immunoparalysis: ImmunoparalysisSpec
    hyperinflammation: HyperinflammationSpec
    cytokine_groups: tuple[CytokineGroupSpec, ...]
    drugs: dict[str, DrugSpec]
    patterns: dict[str, PatternSpec]
    criteria_sets: dict[str, CriteriaSetSpec]
    options: dict[str, OptionSpec]
    precedence: PrecedenceSpec
    settings: dict[str, SettingSpec]
    diagnostic_bar: DiagnosticBarSpec
    safety: tuple[SafetySpec, ...]
    dose_limits: tuple[DoseLimitSpec, ...]
    never_flag: NeverFlagSpec
    drug_effects: tuple[DrugEffectSpec, ...]
    standard_of_care: StandardOfCareSpec
    conditions: dict[str, Condition]  # every condition of the file, parsed, by its text

    @property
    def label(self) -> str:
        return f"{self.version} ({self.digest[:12]})"

    def when(self, texts: list[str]) -> tuple[Condition, ...]:
        return tuple(self.conditions[text.strip()] for text in texts)

    def cite(self, source_id: str) -> SourceSpec:
        return self.sources[source_id]


def default_rules_text() -> str:
    return resources.files("cds_service.rules").joinpath("rules.yaml").read_text("utf-8")


def load_rules(catalog: Catalog, path: Path | None = None) -> Rules:
    """The rules from `path` (a hospital's copy) or the packaged rules.yaml.

    Raises ConfigFileError naming the file and line of the first problem.
    """
    if path is None:
        text = default_rules_text()
        document = YamlDocument("rules.yaml (packaged)", text)
    else:
        document = YamlDocument.read(path)
        text = path.read_text(encoding="utf-8")
    spec = document.validate(RulesSpec)
    _check_references(spec, catalog, document)
    conditions = _conditions(spec, document)
    markers = {
        marker_id: Marker(
            id=marker_id,
            analyte=marker.analyte,
            label=marker.label,
            criteria=tuple(
                _criterion(
                    catalog, document, ("markers", marker_id, "criteria", i), marker.analyte, c
                )
                for i, c in enumerate(marker.criteria)
            ),
            rationale=marker.rationale,
            reading=marker.reading,
            settings=frozenset(marker.settings),
        )
        for marker_id, marker in spec.markers.items()
    }
    for marker in markers.values():
        _check_reachable(marker, catalog, document)
    params = spec.parameters
    return Rules(
        version=spec.version,
        digest=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        sources=dict(spec.sources),
        dominance_ratio=params.dominance_ratio.value,
        near_miss_fraction=params.near_miss_fraction.value,
        cytopenia_min_lines=int(params.cytopenia_min_lines.value),
        markers=markers,
        axes={str(axis_id): axis for axis_id, axis in spec.axes.items()},
        immunoparalysis=spec.immunoparalysis,
        hyperinflammation=spec.hyperinflammation,
        cytokine_groups=tuple(spec.cytokine_groups),
        drugs=dict(spec.drugs),
        patterns={str(k): v for k, v in spec.patterns.items()},
        criteria_sets=dict(spec.criteria_sets),
        options=dict(spec.options),
        precedence=spec.precedence,
        settings={str(k): v for k, v in spec.settings.items()},
        diagnostic_bar=spec.diagnostic_bar,
        safety=tuple(spec.safety),
        dose_limits=tuple(spec.dose_limits),
        never_flag=spec.never_flag,
        drug_effects=tuple(spec.drug_effects),
        standard_of_care=spec.standard_of_care,
        conditions=conditions,
    )


def _condition_places(spec: RulesSpec) -> list[tuple[tuple[str | int, ...], str]]:
    """Every condition of the file with where it is written."""
    places: list[tuple[tuple[str | int, ...], str]] = []
    for setting_id, setting in spec.settings.items():
        for part in ("states", "advice", "avoid"):
            for i, rule in enumerate(getattr(setting, part)):
                for j, text in enumerate(rule.when):
                    places.append((("settings", setting_id, part, i, "when", j), text))
    for j, text in enumerate(spec.diagnostic_bar.when):
        places.append((("diagnostic_bar", "when", j), text))
    for i, check in enumerate(spec.safety):
        for j, text in enumerate(check.when):
            places.append((("safety", i, "when", j), text))
    return places


def _conditions(spec: RulesSpec, document: YamlDocument) -> dict[str, Condition]:
    """Parse every condition and check that each names a fact the engine knows."""
    known = (
        set(COMPUTED_FACTS)
        | set(spec.markers)
        | set(spec.criteria_sets)
        | {f"option.{name}" for name in spec.options}
    )
    parsed: dict[str, Condition] = {}
    for loc, text in _condition_places(spec):
        try:
            condition = parse_condition(text)
        except ValueError as exc:
            raise document.error(loc, str(exc)) from None
        for fact in condition.facts():
            if fact not in known:
                raise document.error(loc, f"unknown fact {fact!r} in condition {text!r}")
        parsed[condition.text] = condition
    return parsed


def _criterion(
    catalog: Catalog, document: YamlDocument, loc: Loc, analyte: str, spec: CriterionSpec
) -> Criterion:
    if spec.uln_multiple is not None:
        return Criterion(spec.comparison, spec.source, uln_multiple=spec.uln_multiple)
    assert spec.value is not None and spec.unit is not None
    conversion = catalog.resolve_unit(analyte, spec.unit)
    if isinstance(conversion, str):
        accepted = sorted(
            unit
            for family in catalog.analyte(analyte).families.values()
            for unit in family.variants
        )
        raise document.error(
            (*loc, "unit"),
            f"unit {spec.unit!r} is not an accepted unit of {analyte} "
            f"(accepted: {', '.join(accepted)})",
        )
    return Criterion(
        comparison=spec.comparison,
        source=spec.source,
        family=conversion.family,
        threshold=conversion.apply(spec.value),
        unit=conversion.unit,
        written=f"{spec.value:g} {spec.unit}",
    )


def _check_reachable(marker: Marker, catalog: Catalog, document: YamlDocument) -> None:
    """Criteria are tried in order; one that can never be reached is a mistake in the file."""
    families = set(catalog.analyte(marker.analyte).families)
    covered: set[str] = set()
    for i, criterion in enumerate(marker.criteria):
        loc = ("markers", marker.id, "criteria", i)
        if criterion.family is not None and criterion.family in covered:
            raise document.error(loc, "a second threshold for the same unit family never applies")
        if criterion.family is None and covered >= families:
            raise document.error(
                loc, "never applies: the thresholds above cover every unit of the analyte"
            )
        if criterion.family is not None:
            covered.add(criterion.family)


def _check_references(spec: RulesSpec, catalog: Catalog, document: YamlDocument) -> None:
    """Every id the file uses must be defined (in the file, or in the analyte catalog)."""
    problems: list[tuple[Loc, str]] = []

    def need(kind: str, known: object, value: str | None, loc: Loc) -> None:
        if value is not None and value not in known:  # type: ignore[operator]
            problems.append((loc, f"unknown {kind} {value!r}"))

    analytes = set(catalog.analyte_ids)
    for name, param in spec.parameters:
        need("source", spec.sources, param.source, ("parameters", name, "source"))
    for marker_id, marker in spec.markers.items():
        need("analyte", analytes, marker.analyte, ("markers", marker_id, "analyte"))
        for i, criterion in enumerate(marker.criteria):
            need("source", spec.sources, criterion.source, ("markers", marker_id, "criteria", i))
    for axis_id, axis in spec.axes.items():
        for part in ("pivotal", "supportive", "excluded_by"):
            for i, marker_id in enumerate(getattr(axis, part)):
                need("marker", spec.markers, marker_id, ("axes", axis_id, part, i))
    for part in ("required", "excluded_by", "supportive"):
        for i, marker_id in enumerate(getattr(spec.immunoparalysis, part)):
            need("marker", spec.markers, marker_id, ("immunoparalysis", part, i))
    need("source", spec.sources, spec.immunoparalysis.source, ("immunoparalysis", "source"))
    for part in ("signs", "cytopenias"):
        for i, marker_id in enumerate(getattr(spec.hyperinflammation, part)):
            need("marker", spec.markers, marker_id, ("hyperinflammation", part, i))
    need("source", spec.sources, spec.hyperinflammation.source, ("hyperinflammation", "source"))
    for g, group in enumerate(spec.cytokine_groups):
        for i, analyte in enumerate(group.analytes):
            need("analyte", analytes, analyte, ("cytokine_groups", g, "analytes", i))
    for subtype, pattern in spec.patterns.items():
        need("source", spec.sources, pattern.source, ("patterns", subtype, "source"))
    for set_id, criteria in spec.criteria_sets.items():
        loc: Loc = ("criteria_sets", set_id)
        need("source", spec.sources, criteria.source, (*loc, "source"))
        of = criteria.at_least.of if criteria.at_least else []
        for part, ids in (("all", criteria.all), ("none", criteria.none), ("at_least", of)):
            for i, marker_id in enumerate(ids):
                need("marker", spec.markers, marker_id, (*loc, part, i))
    for name, option in spec.options.items():
        need("source", spec.sources, option.source, ("options", name, "source"))
    need("source", spec.sources, spec.precedence.source, ("precedence", "source"))
    need("source", spec.sources, spec.diagnostic_bar.source, ("diagnostic_bar", "source"))
    for setting_id, setting in spec.settings.items():
        loc = ("settings", setting_id)
        states = {state.id for state in setting.states}
        for i, state in enumerate(setting.states):
            need("source", spec.sources, state.source, (*loc, "states", i, "source"))
        for i, advice in enumerate(setting.advice):
            for state_id in advice.states:
                need("state", states, state_id, (*loc, "advice", i, "state"))
            need("drug", spec.drugs, advice.drug, (*loc, "advice", i, "drug"))
            need("source", spec.sources, advice.source, (*loc, "advice", i, "source"))
            if advice.alternatives is not None:
                at = (*loc, "advice", i, "alternatives")
                need("source", spec.sources, advice.alternatives.source, (*at, "source"))
                for j, other in enumerate(advice.alternatives.drugs):
                    need("drug", spec.drugs, other, (*at, "drugs", j))
            if advice.already_given is not None:
                given_at = (*loc, "advice", i, "already_given", "source")
                need("source", spec.sources, advice.already_given.source, given_at)
            if advice.ages is not None:
                ages_at = (*loc, "advice", i, "ages", "source")
                need("source", spec.sources, advice.ages.source, ages_at)
        for i, avoid in enumerate(setting.avoid):
            for j, drug_id in enumerate(avoid.drugs):
                need("drug", spec.drugs, drug_id, (*loc, "avoid", i, "drugs", j))
            need("drug", spec.drugs, avoid.instead, (*loc, "avoid", i, "instead"))
            need("source", spec.sources, avoid.source, (*loc, "avoid", i, "source"))
    for i, check in enumerate(spec.safety):
        for j, drug_id in enumerate(check.drugs):
            need("drug", spec.drugs, drug_id, ("safety", i, "drugs", j))
        need("source", spec.sources, check.source, ("safety", i, "source"))
    for i, limit in enumerate(spec.dose_limits):
        for j, drug_id in enumerate(limit.drugs):
            need("drug", spec.drugs, drug_id, ("dose_limits", i, "drugs", j))
        need("source", spec.sources, limit.source, ("dose_limits", i, "source"))
        for j, band in enumerate(limit.by_weight):
            if band.source is not None:
                need("source", spec.sources, band.source, ("dose_limits", i, "by_weight", j))
        if limit.rounding is not None:
            need("source", spec.sources, limit.rounding.source, ("dose_limits", i, "rounding"))
        if limit.by_weight:
            need("analyte", analytes, BODY_WEIGHT, ("dose_limits", i, "by_weight"))
    for i, effect in enumerate(spec.drug_effects):
        need("analyte", analytes, effect.analyte, ("drug_effects", i, "analyte"))
        need("drug", spec.drugs, effect.drug, ("drug_effects", i, "drug"))
        need("source", spec.sources, effect.source, ("drug_effects", i, "source"))
    for j, drug_id in enumerate(spec.never_flag.drugs):
        need("drug", spec.drugs, drug_id, ("never_flag", "drugs", j))
    need("source", spec.sources, spec.never_flag.source, ("never_flag", "source"))
    need("source", spec.sources, spec.standard_of_care.source, ("standard_of_care", "source"))
    if problems:
        loc, message = problems[0]
        error = document.error(loc, message)
        more = len(problems) - 1
        raise ConfigFileError(f"{error} (and {more} more problems)" if more else str(error))


__all__ = ["Criterion", "Marker", "Rules", "load_rules"]
