"""Unit conversion: every unit pair the catalog accepts, end to end through build_evidence."""

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from observation_builders import AS_OF, observation, quantity

from cds_service.evidence import Catalog, build_evidence, load_catalog
from cds_service.evidence.units import UnitError, conversion, ucum_registry

# (analyte, value, unit as sent, ucum-coded?, expected canonical value, canonical unit)
UNIT_PAIRS = [
    ("il6", 12.0, "pg/mL", True, 12.0, "pg/mL"),
    ("il6", 12.0, "ng/L", True, 12.0, "pg/mL"),
    ("il6", 0.012, "ng/mL", True, 12.0, "pg/mL"),  # factor 1000
    ("il6", 12.0, "pg/ml", False, 12.0, "pg/mL"),  # case spelling
    ("ferritin", 540.0, "ng/mL", True, 540.0, "ng/mL"),
    ("ferritin", 540.0, "ug/L", True, 540.0, "ng/mL"),
    ("ferritin", 540.0, "µg/L", False, 540.0, "ng/mL"),  # micro sign alias
    ("ferritin", 540.0, "μg/L", False, 540.0, "ng/mL"),  # Greek mu alias
    ("ferritin", 540000.0, "ng/L", True, 540.0, "ng/mL"),
    ("crp", 75.0, "mg/L", True, 75.0, "mg/L"),
    ("crp", 7.5, "mg/dL", True, 75.0, "mg/L"),
    ("fibrinogen", 150.0, "mg/dL", True, 1.5, "g/L"),
    ("hemoglobin", 9.0, "g/dL", True, 90.0, "g/L"),
    ("platelets", 100.0, "10*3/uL", True, 100.0, "10*9/L"),
    ("platelets", 100.0, "10*9/L", True, 100.0, "10*9/L"),
    ("platelets", 100000.0, "/uL", True, 100.0, "10*9/L"),
    ("platelets", 100.0, "K/uL", False, 100.0, "10*9/L"),
    ("platelets", 100.0, "x10E3/uL", False, 100.0, "10*9/L"),
    ("platelets", 100.0, "x10^9/L", False, 100.0, "10*9/L"),
    ("platelets", 100.0, "G/L", False, 100.0, "10*9/L"),
    ("lymphocytes", 800.0, "/mm3", True, 0.8, "10*9/L"),
    ("temperature", 38.5, "Cel", True, 38.5, "Cel"),
    ("temperature", 101.3, "[degF]", True, 38.5, "Cel"),
    ("temperature", 98.6, "°F", False, 37.0, "Cel"),
    ("temperature", 38.5, "°C", False, 38.5, "Cel"),
    ("triglycerides", 3.0, "mmol/L", True, 3.0, "mmol/L"),
    ("triglycerides", 265.0, "mg/dL", True, 265.0 * 0.01129, "mmol/L"),
    ("ast", 0.8, "ukat/L", True, 48.0, "U/L"),
    ("ast", 48.0, "IU/L", False, 48.0, "U/L"),
    ("ast", 48.0, "[IU]/L", True, 48.0, "U/L"),
    ("ddimer", 1.5, "mg/L FEU", False, 1.5, "ug/mL{FEU}"),
    ("ddimer", 1500.0, "ng/mL{FEU}", True, 1.5, "ug/mL{FEU}"),
    ("mhla_dr", 4200.0, "{molecules}/{cell}", True, 4200.0, "{molecules}/{cell}"),
    ("mhla_dr", 4200.0, "AB/C", False, 4200.0, "{molecules}/{cell}"),
]


@pytest.mark.parametrize(("analyte", "value", "unit", "ucum", "expected", "canonical"), UNIT_PAIRS)
def test_unit_pairs_convert_to_the_canonical_unit(
    catalog: Catalog,
    analyte: str,
    value: float,
    unit: str,
    ucum: bool,
    expected: float,
    canonical: str,
) -> None:
    obs = observation(analyte, valueQuantity=quantity(value, unit, ucum=ucum))
    evidence = build_evidence([obs], catalog, AS_OF)
    assert evidence.problems == ()
    latest = evidence.analytes[analyte].latest
    # Triglycerides: the clinical factor 0.01129 is itself rounded to 4 digits.
    tolerance = 1e-4 if analyte == "triglycerides" else 1e-9
    assert latest.value == pytest.approx(expected, rel=tolerance)
    assert latest.unit == canonical


# (analyte, unit, why it must be refused)
REFUSED_UNITS = [
    ("mhla_dr", "%", "percent HLA-DR+ monocytes is another measure, though both are dimensionless"),
    ("il6", "U/mL", "activity is not mass"),
    ("tnfa", "[IU]/mL", "not a mass concentration"),
    ("ferritin", "mmol/L", "no molar mass in the catalog for ferritin"),
    (
        "hemoglobin",
        "G/L",
        "an exact alias whose target the analyte does not accept is not retried loosely",
    ),
    ("platelets", "%", "relative count is not an absolute count"),
    ("crp", "furlongs", "not a unit"),
    ("crp", "", "empty unit text"),
]


@pytest.mark.parametrize(("analyte", "unit", "why"), REFUSED_UNITS)
def test_unconvertible_units_are_kept_out_and_reported(
    catalog: Catalog, analyte: str, unit: str, why: str
) -> None:
    obs = observation(analyte, id="refused", valueQuantity={"value": 10, "unit": unit})
    evidence = build_evidence([obs], catalog, AS_OF)
    assert evidence.get(analyte) is None, why
    expected_code = "unit-missing" if unit == "" else "unit-not-convertible"
    assert [(p.code, p.reference, p.analyte) for p in evidence.problems] == [
        (expected_code, "Observation/refused", analyte)
    ]


def test_ucum_code_wins_over_unit_text(catalog: Catalog) -> None:
    q = {"value": 0.5, "unit": "pg/mL", "system": "http://unitsofmeasure.org", "code": "ng/mL"}
    evidence = build_evidence([observation("il6", valueQuantity=q)], catalog, AS_OF)
    assert evidence.analytes["il6"].latest.value == pytest.approx(500.0)


def test_unit_text_is_read_when_the_system_is_not_ucum(catalog: Catalog) -> None:
    q = {
        "value": 0.5,
        "unit": "ng/mL",
        "system": "http://hospital.example.org/units",
        "code": "NGML",
    }
    evidence = build_evidence([observation("il6", valueQuantity=q)], catalog, AS_OF)
    assert evidence.analytes["il6"].latest.value == pytest.approx(500.0)


@pytest.mark.parametrize(
    ("source", "canonical", "factor", "offset"),
    [
        ("pg/mL", "ng/L", 1.0, 0.0),
        ("ng/mL", "ug/L", 1.0, 0.0),
        ("mg/L", "mg/dL", 0.1, 0.0),
        ("10*3/uL", "10*9/L", 1.0, 0.0),
        ("/uL", "10*9/L", 0.001, 0.0),
        ("[degF]", "Cel", 5 / 9, -32 * 5 / 9),
        ("Cel", "[degF]", 9 / 5, 32.0),
    ],
)
def test_conversion_factors_come_from_the_ucum_library(
    source: str, canonical: str, factor: float, offset: float
) -> None:
    found = conversion(source, "f", canonical)
    assert found.factor == pytest.approx(factor, rel=1e-12)
    assert found.offset == pytest.approx(offset, rel=1e-12, abs=1e-12)


def test_molar_mass_converts_triglycerides_like_the_clinical_factor() -> None:
    found = conversion("mg/dL", "concentration", "mmol/L", molar_mass_g_per_mol=885.7)
    assert found.factor == pytest.approx(0.01129, rel=1e-3)
    back = conversion("mmol/L", "concentration", "mg/dL", molar_mass_g_per_mol=885.7)
    assert back.factor == pytest.approx(88.57, rel=1e-9)


@pytest.mark.parametrize(
    ("source", "canonical"), [("U/mL", "pg/mL"), ("mmol/L", "mg/dL"), ("garbage!", "pg/mL")]
)
def test_conversion_refuses_what_the_library_cannot_convert(source: str, canonical: str) -> None:
    with pytest.raises(UnitError):
        conversion(source, "f", canonical)


# Property: any accepted variant converts back to the canonical value


def _variants(cat: Catalog) -> list[tuple[str, str, str]]:
    return [
        (analyte, family.id, unit)
        for analyte in cat.analyte_ids
        for family in cat.analyte(analyte).families.values()
        for unit in family.variants
    ]


_CATALOG = load_catalog()
_VARIANTS = _variants(_CATALOG)


def _canonical_to_variant(
    value: float, canonical: str, variant: str, same_as: str | None, molar_mass: float | None
) -> float:
    """Express a canonical value in the variant unit, with the UCUM library directly."""
    registry = ucum_registry()
    target = registry.from_ucum(same_as or variant)
    source = registry.from_ucum(canonical)
    if not hasattr(target, "to"):  # annotation-only units are the unit 1
        return value
    q = source.__class__(value * source.magnitude, source.units)
    try:
        out = q.to(target.units)
    except Exception:
        mass = registry.from_ucum("g/mol") * molar_mass
        try:
            out = (q * mass).to(target.units)
        except Exception:
            out = (q / mass).to(target.units)
    return float(out.magnitude) / float(target.magnitude)


@settings(max_examples=300, deadline=None)
@given(
    choice=st.sampled_from(_VARIANTS),
    value=st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False),
)
def test_any_variant_converts_back_to_the_canonical_value(
    choice: tuple[str, str, str], value: float
) -> None:
    analyte, family_id, variant = choice
    family = _CATALOG.analyte(analyte).families[family_id]
    # Outside the plausible range a value is a data problem (test_evidence_plausibility.py).
    assume(family.plausible_low <= value <= family.plausible_high)
    code = next(c for c in _CATALOG.analyte(analyte).codes if c.family in (None, family_id))
    sent = _canonical_to_variant(
        value, family.canonical, variant, family.same_as.get(variant), family.molar_mass_g_per_mol
    )
    obs = {
        "resourceType": "Observation",
        "id": "p",
        "status": "final",
        "code": {"coding": [{"system": code.system, "code": code.code}]},
        "effectiveDateTime": "2026-11-20T06:00:00Z",
        "valueQuantity": quantity(sent, variant),
    }
    evidence = build_evidence([obs], _CATALOG, AS_OF)
    latest = evidence.analytes[analyte].latest
    assert (latest.family, latest.unit) == (family_id, family.canonical)
    assert math.isclose(latest.value, value, rel_tol=1e-9)
