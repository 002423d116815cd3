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
from cds_service.rules.schema import (
    AxisSpec,
    Comparison,
    CriterionSpec,
    CytokineGroupSpec,
    DrugSpec,
    HyperinflammationSpec,
    ImmunoparalysisSpec,
    RulesSpec,
    SourceSpec,
    TreatmentSpec,
)
from cds_service.yamlfile import ConfigFileError, Loc, YamlDocument


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


@dataclass(frozen=True)
class Rules:
    version: str
    digest: str  # sha256 of the file, so an audit row names the exact rules that ran
    sources: dict[str, SourceSpec]
    dominance_ratio: float
    near_miss_fraction: float
    cytopenia_min_lines: int
    high_dose_steroid_mg: float
    markers: dict[str, Marker]
    axes: dict[str, AxisSpec]  # il1, ifng, il6
    immunoparalysis: ImmunoparalysisSpec
    hyperinflammation: HyperinflammationSpec
    cytokine_groups: tuple[CytokineGroupSpec, ...]
    drugs: dict[str, DrugSpec]
    treatments: dict[str, TreatmentSpec]

    @property
    def label(self) -> str:
        return f"{self.version} ({self.digest[:12]})"


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
        high_dose_steroid_mg=params.high_dose_corticosteroid_mg_per_day.value,
        markers=markers,
        axes={str(axis_id): axis for axis_id, axis in spec.axes.items()},
        immunoparalysis=spec.immunoparalysis,
        hyperinflammation=spec.hyperinflammation,
        cytokine_groups=tuple(spec.cytokine_groups),
        drugs=dict(spec.drugs),
        treatments=dict(spec.treatments),
    )


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
    for subtype, treatment in spec.treatments.items():
        need("drug", spec.drugs, treatment.recommend, ("treatments", subtype, "recommend"))
        need("source", spec.sources, treatment.source, ("treatments", subtype, "source"))
    if problems:
        loc, message = problems[0]
        error = document.error(loc, message)
        more = len(problems) - 1
        raise ConfigFileError(f"{error} (and {more} more problems)" if more else str(error))


__all__ = ["Criterion", "Marker", "Rules", "load_rules"]
