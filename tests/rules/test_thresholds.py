"""Boundary tests: every threshold of the rules file, just below, at and just above it, in every
unit the catalog accepts for that threshold's unit family.

The cases are generated from the shipped rules and catalog, so a threshold or unit added there
is tested too; the expected outcome follows only from the comparison the rules file writes.
"""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.evidence import build_evidence, load_catalog
from cds_service.rules.engine import judge_marker
from cds_service.rules.loader import load_rules
from cds_service.runtime import Runtime
from tests.evidence.observation_builders import AS_OF, observation, quantity, reference_range

# Whether the marker fires for a result just below, at and just above its threshold.
FIRES = {
    ">": (False, False, True),
    ">=": (False, True, True),
    "<": (True, False, False),
    "<=": (True, True, False),
}
STEP = 1e-3  # relative: far above conversion noise, far below any clinical difference


def _cases() -> list[Any]:
    catalog = load_catalog()
    rules = load_rules(catalog)
    cases = []
    for marker in rules.markers.values():
        entry = catalog.analyte(marker.analyte)
        for criterion in marker.criteria:
            if criterion.family is None:
                continue  # reference-range criteria: see test_upper_reference_limit_boundary
            codes = [c for c in entry.codes if c.family in (None, criterion.family)]
            for unit in entry.families[criterion.family].variants:
                code = (codes[0].system, codes[0].code)
                case_id = f"{marker.id}-{unit}"
                cases.append(pytest.param(marker.id, criterion.family, unit, code, id=case_id))
    return cases


def _in_unit(runtime: Runtime, analyte: str, canonical: float, unit: str) -> float:
    conversion = runtime.catalog.resolve_unit(analyte, unit)
    assert not isinstance(conversion, str), conversion
    return (canonical - conversion.offset) / conversion.factor


@pytest.mark.parametrize(("marker_id", "family", "unit", "code"), _cases())
def test_threshold_boundary_in_every_accepted_unit(
    runtime: Runtime, marker_id: str, family: str, unit: str, code: tuple[str, str]
) -> None:
    marker = runtime.rules.markers[marker_id]
    criterion = next(c for c in marker.criteria if c.family == family)
    assert criterion.threshold is not None
    observed = []
    for factor in (1 - STEP, 1.0, 1 + STEP):
        value = _in_unit(runtime, marker.analyte, criterion.threshold * factor, unit)
        obs = observation(marker.analyte, valueQuantity=quantity(value, unit))
        obs["code"] = {"coding": [{"system": code[0], "code": code[1]}]}
        evidence = build_evidence([obs], runtime.catalog, AS_OF)
        assert evidence.get(marker.analyte) is not None, evidence.problems
        setting = min(marker.settings, default="unknown")  # judged in its own population
        result = judge_marker(marker, evidence, runtime.rules.near_miss_fraction, setting=setting)
        assert result.basis == "threshold"
        observed.append(result.state == "above")
    assert tuple(observed) == FIRES[criterion.comparison]


@pytest.mark.parametrize("marker_id", ["il1b-high", "sil2r-high"])
def test_upper_reference_limit_boundary(runtime: Runtime, marker_id: str) -> None:
    """Where no threshold fits the result's unit family, the result's own range is used."""
    marker = runtime.rules.markers[marker_id]
    criterion = next(c for c in marker.criteria if c.uln_multiple is not None)
    assert criterion.uln_multiple is not None
    high = 40.0
    observed = []
    for factor in (1 - STEP, 1.0, 1 + STEP):
        value = criterion.uln_multiple * high * factor
        obs = observation(
            marker.analyte,  # in ng/L: for sIL-2R a mass unit, where only U/mL has a threshold
            valueQuantity=quantity(value, "ng/L"),
            referenceRange=reference_range(high=high, unit="ng/L"),
        )
        evidence = build_evidence([obs], runtime.catalog, AS_OF)
        setting = min(marker.settings, default="unknown")
        result = judge_marker(marker, evidence, runtime.rules.near_miss_fraction, setting=setting)
        observed.append(result.state == "above")
        if factor == 1.0:
            assert result.basis == "reference-range"
            assert "upper reference limit" in result.threshold_text
    assert tuple(observed) == FIRES[criterion.comparison]


def test_cxcl9_uses_its_threshold_when_the_unit_fits(runtime: Runtime) -> None:
    marker = runtime.rules.markers["cxcl9-high"]
    obs = observation(
        "cxcl9",
        valueQuantity=quantity(3500, "pg/mL"),
        referenceRange=reference_range(high=647, unit="pg/mL"),
    )
    result = judge_marker(
        marker, build_evidence([obs], runtime.catalog, AS_OF), runtime.rules.near_miss_fraction
    )
    assert (result.state, result.basis, result.threshold) == ("above", "threshold", 3130)


def test_result_without_fitting_criterion_is_said_so(runtime: Runtime) -> None:
    """IL-1β has only a reference-range criterion: without a range it cannot be judged."""
    obs = observation("il1b", valueQuantity=quantity(50, "pg/mL"))
    result = judge_marker(
        runtime.rules.markers["il1b-high"],
        build_evidence([obs], runtime.catalog, AS_OF),
        runtime.rules.near_miss_fraction,
    )
    assert result.state == "no-criterion"
