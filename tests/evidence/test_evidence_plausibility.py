"""Impossible values (a negative concentration, 1e300 pg/mL, a Fahrenheit reading sent as
Celsius) are data problems, never results: each unit family's plausible range is data in the
catalog, with its source. A text result without a unit is a data problem too, not lost."""

from typing import Any

import pytest
from observation_builders import AS_OF, observation, quantity

from cds_service.evidence import Catalog, build_evidence


def problems(evidence: Any, code: str) -> list[Any]:
    return [p for p in evidence.problems if p.code == code]


@pytest.mark.parametrize(
    ("analyte", "fields"),
    [
        ("il6", {"valueQuantity": quantity(-320, "pg/mL")}),
        ("il6", {"valueQuantity": quantity(1e300, "pg/mL")}),
        ("il6", {"valueQuantity": quantity(1e300, "pg/mL", comparator=">")}),
        ("il6", {"valueString": "-320 pg/mL"}),
        ("il6", {"valueString": ">1e300 pg/mL"}),
        ("il6", {"valueQuantity": quantity(1e6, "ng/mL")}),  # 1e9 pg/mL once converted
        ("ferritin", {"valueQuantity": quantity(-5, "ng/mL")}),
        ("platelets", {"valueQuantity": quantity(1e9, "10*9/L")}),  # a count per litre as 10^9/L
        ("temperature", {"valueQuantity": quantity(98.6, "Cel")}),  # Fahrenheit sent as Celsius
        ("sil2r_u", {"valueQuantity": quantity(-1, "U/mL")}),
        ("il6", {"valueRange": {"low": quantity(10, "pg/mL"), "high": quantity(1e300, "pg/mL")}}),
    ],
)
def test_impossible_values_are_data_problems_not_results(
    catalog: Catalog, analyte: str, fields: dict[str, Any]
) -> None:
    evidence = build_evidence([observation(analyte, **fields)], catalog, AS_OF)
    analyte_id = "sil2r" if analyte == "sil2r_u" else analyte
    assert evidence.get(analyte_id) is None, "an impossible value is never judged"
    [problem] = problems(evidence, "implausible-value")
    assert problem.analyte == analyte_id
    assert problem.reference == "Observation/obs-1"
    assert "plausible range" in problem.reason


@pytest.mark.parametrize(
    ("analyte", "fields", "expected"),
    [
        ("il6", {"valueQuantity": quantity(0, "pg/mL")}, 0.0),
        ("il6", {"valueQuantity": quantity(2.5e4, "pg/mL")}, 2.5e4),
        ("ferritin", {"valueQuantity": quantity(250_000, "ng/mL")}, 250_000.0),
        ("temperature", {"valueQuantity": quantity(104, "[degF]")}, 40.0),
        ("temperature", {"valueQuantity": quantity(31.5, "Cel")}, 31.5),  # deep hypothermia
    ],
)
def test_extreme_but_possible_values_are_read(
    catalog: Catalog, analyte: str, fields: dict[str, Any], expected: float
) -> None:
    evidence = build_evidence([observation(analyte, **fields)], catalog, AS_OF)
    found = evidence.get(analyte)
    assert found is not None and found.latest.value == pytest.approx(expected)
    assert not problems(evidence, "implausible-value")


@pytest.mark.parametrize(
    ("analyte", "fields"),
    [
        ("ast", {"valueQuantity": quantity(1e6 / 60, "ukat/L")}),  # 1e6 U/L, the upper bound
        ("ferritin", {"valueQuantity": quantity(1e7, "ug/L")}),
        ("pct", {"valueQuantity": quantity(1e7, "pg/mL")}),  # 10,000 ng/mL
    ],
)
def test_a_result_at_a_plausible_bound_in_another_unit_is_read(
    catalog: Catalog, analyte: str, fields: dict[str, Any]
) -> None:
    """Converting to the canonical unit rounds: the bound itself, sent in another accepted
    unit, comes back a hair past it and must still be read."""
    evidence = build_evidence([observation(analyte, **fields)], catalog, AS_OF)
    found = evidence.get(analyte)
    assert not problems(evidence, "implausible-value")
    high = catalog.analyte(analyte).families[found.latest.family].plausible_high if found else 0
    assert found is not None and found.latest.value == pytest.approx(high)


def test_one_impossible_value_leaves_the_earlier_real_one_judged(catalog: Catalog) -> None:
    real = observation(
        "il6", id="real", when="2026-11-19T06:00:00Z", valueQuantity=quantity(80, "pg/mL")
    )
    bad = observation("il6", id="bad", valueQuantity=quantity(-320, "pg/mL"))
    evidence = build_evidence([real, bad], catalog, AS_OF)
    found = evidence.get("il6")
    assert found is not None and found.latest.source == "Observation/real"
    assert [p.reference for p in problems(evidence, "implausible-value")] == ["Observation/bad"]


def test_every_unit_family_states_its_plausible_range_and_source(catalog: Catalog) -> None:
    from cds_service.evidence.catalog import _load_spec

    spec, _ = _load_spec()
    for analyte_id, analyte in spec.analytes.items():
        for family_id, family in analyte.families.items():
            assert family.plausible.low < family.plausible.high, (analyte_id, family_id)
            assert len(family.plausible.source) > 20, (analyte_id, family_id)
            entry = catalog.analyte(analyte_id).families[family_id]
            assert entry.plausible_high == family.plausible.high


@pytest.mark.parametrize("text", [">5000", "> 5000", "<5", "5000"])
def test_a_text_result_without_any_unit_is_a_data_problem(catalog: Catalog, text: str) -> None:
    evidence = build_evidence([observation("il6", valueString=text)], catalog, AS_OF)
    assert evidence.get("il6") is None
    [problem] = problems(evidence, "unit-missing")
    assert problem.analyte == "il6"
