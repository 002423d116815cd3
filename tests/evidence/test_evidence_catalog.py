"""The analyte catalog: content of catalog.yaml and hospital local codes files."""

from pathlib import Path

import pytest
from observation_builders import AS_OF, LOCAL, LOINC, observation, quantity

from cds_service.evidence import Catalog, CatalogError, build_evidence, load_catalog

HOSPITAL_CODES = Path(__file__).parent / "data" / "hospital-codes.yaml"
HOSP = "http://hospital.example.org/fhir/CodeSystem/lab-codes"

# The analytes the catalog must know, with a code each must be known by, and its canonical unit(s).
REQUIRED = [
    ("il6", (LOINC, "26881-3"), {"mass": "pg/mL"}),
    ("il1b", (LOINC, "13629-1"), {"mass": "pg/mL"}),
    ("il18", (LOCAL, "il-18"), {"mass": "pg/mL"}),
    ("ifng", (LOINC, "27415-9"), {"mass": "pg/mL"}),
    ("cxcl9", (LOINC, "98115-9"), {"mass": "pg/mL"}),
    ("sil2r", (LOINC, "76039-7"), {"mass": "pg/mL", "activity": "U/mL"}),
    ("tnfa", (LOINC, "3074-2"), {"mass": "pg/mL"}),
    ("il10", (LOINC, "26848-2"), {"mass": "pg/mL"}),
    ("ferritin", (LOINC, "2276-4"), {"mass": "ng/mL"}),
    ("crp", (LOINC, "1988-5"), {"mass": "mg/L"}),
    ("pct", (LOINC, "33959-8"), {"mass": "ng/mL"}),
    ("lymphocytes", (LOINC, "731-0"), {"count": "10*9/L"}),
    ("neutrophils", (LOINC, "751-8"), {"count": "10*9/L"}),
    ("platelets", (LOINC, "777-3"), {"count": "10*9/L"}),
    ("leukocytes", (LOINC, "6690-2"), {"count": "10*9/L"}),
    ("hemoglobin", (LOINC, "718-7"), {"mass": "g/L"}),
    ("fibrinogen", (LOINC, "3255-7"), {"mass": "g/L"}),
    ("triglycerides", (LOINC, "2571-8"), {"concentration": "mmol/L"}),
    ("ast", (LOINC, "1920-8"), {"activity": "U/L"}),
    ("alt", (LOINC, "1742-6"), {"activity": "U/L"}),
    ("ldh", (LOINC, "2532-0"), {"activity": "U/L"}),
    ("ddimer", (LOINC, "48065-7"), {"feu": "ug/mL{FEU}"}),
    ("temperature", (LOINC, "8310-5"), {"temperature": "Cel"}),
    ("mhla_dr", (LOCAL, "mhla-dr"), {"molecules": "{molecules}/{cell}"}),
    # vital signs and respiratory support (ASTCT CRS grade, RECOVERY eligibility)
    ("spo2", (LOINC, "59408-5"), {"percent": "%"}),
    ("o2_flow", (LOINC, "3151-8"), {"flow": "L/min"}),
    ("fio2", (LOINC, "3150-0"), {"percent": "%"}),
    ("sbp", (LOINC, "8480-6"), {"pressure": "mm[Hg]"}),
    ("map", (LOINC, "8478-0"), {"pressure": "mm[Hg]"}),
    # body weight (the dose limits by weight)
    ("body_weight", (LOINC, "29463-7"), {"mass": "kg"}),
]


@pytest.mark.parametrize(("analyte", "code", "canonical"), REQUIRED)
def test_required_analytes_codes_and_units(
    catalog: Catalog, analyte: str, code: tuple[str, str], canonical: dict[str, str]
) -> None:
    entry = catalog.analyte(analyte)
    assert code in catalog.codes(analyte)
    assert {fid: f.canonical for fid, f in entry.families.items()} == canonical
    for family in entry.families.values():
        assert family.variants[0] == family.canonical
    assert entry.freshness_hours > 0 and entry.freshness_source
    assert all(c.confirmed for c in entry.codes), "every code says where it was confirmed"


def test_catalog_has_no_analyte_beyond_the_required_ones(catalog: Catalog) -> None:
    assert set(catalog.analyte_ids) == {a for a, _, _ in REQUIRED}


@pytest.mark.parametrize(
    ("analyte", "code", "value", "unit", "expected"),
    [
        ("spo2", "2708-6", 91, "%", 91),
        ("o2_flow", "3151-8", 4, "L/min", 4),
        ("o2_flow", "3151-8", 500, "mL/min", 0.5),
        ("fio2", "3150-0", 40, "%", 40),
        ("sbp", "8480-6", 88, "mmHg", 88),
        ("map", "8478-0", 8, "kPa", 60.0),
        ("body_weight", "29463-7", 110, "[lb_av]", 49.895),
        ("body_weight", "29463-7", 110, "lbs", 49.895),
        ("body_weight", "3141-9", 3500, "g", 3.5),
        ("temperature", "8331-1", 101.3, "[degF]", 38.5),
    ],
)
def test_vital_signs_are_read_like_labs(
    catalog: Catalog, analyte: str, code: str, value: float, unit: str, expected: float
) -> None:
    obs = observation(
        "temperature", valueQuantity=quantity(value, unit, ucum=unit not in ("mmHg", "lbs"))
    )
    obs["code"] = {"coding": [{"system": LOINC, "code": code}]}
    evidence = build_evidence([obs], catalog, AS_OF)
    assert evidence.analytes[analyte].latest.value == pytest.approx(expected, abs=0.05)


def test_local_code_system_has_il18_and_mhla_dr(catalog: Catalog) -> None:
    assert catalog.local_code_system == LOCAL
    assert catalog.match_code(LOCAL, "il-18").analyte == "il18"
    assert catalog.match_code(LOCAL, "mhla-dr").analyte == "mhla_dr"


def test_cytokine_freshness_is_48_hours_and_ferritin_72(catalog: Catalog) -> None:
    for cytokine in ("il6", "il1b", "il18", "ifng", "cxcl9", "sil2r", "tnfa", "il10"):
        assert catalog.analyte(cytokine).freshness_hours == 48
    assert catalog.analyte("ferritin").freshness_hours == 72


def test_loinc_oid_is_the_same_system(catalog: Catalog) -> None:
    binding = catalog.match_code("urn:oid:2.16.840.1.113883.6.1", "26881-3")
    assert binding is not None and binding.analyte == "il6"


def test_unknown_analyte_id_raises_key_error(catalog: Catalog) -> None:
    with pytest.raises(KeyError):
        catalog.analyte("il99")


def test_local_codes_file_adds_codes_and_unit_spellings() -> None:
    hospital = load_catalog(HOSPITAL_CODES)
    assert (HOSP, "IL18") in hospital.codes("il18")
    il18 = observation("il18", valueQuantity={"value": 4800, "unit": "PG/ML"})
    il18["code"] = {"coding": [{"system": HOSP, "code": "IL18"}]}
    sil2r = observation("sil2r", id="s", valueQuantity=quantity(3100, "U/mL"))
    sil2r["code"] = {"coding": [{"system": HOSP, "code": "SIL2R-IMMULITE"}]}
    evidence = build_evidence([il18, sil2r], hospital, AS_OF)
    assert evidence.problems == ()
    assert evidence.analytes["il18"].latest.value == 4800.0
    assert evidence.analytes["sil2r"].latest.family == "activity"


def test_without_the_local_file_hospital_codes_are_unknown(catalog: Catalog) -> None:
    obs = observation("il18", valueQuantity=quantity(4800, "pg/mL"))
    obs["code"] = {"coding": [{"system": HOSP, "code": "IL18"}]}
    assert [p.code for p in build_evidence([obs], catalog, AS_OF).problems] == ["unknown-code"]


# (file text, expected message fragments: the problem and the YAML line)
BAD_LOCAL_FILES = [
    (
        "codes:\n  - analyte: il99\n    system: s\n    code: c\n",
        ["line 2", "unknown analyte 'il99'"],
    ),
    (
        "codes:\n  - analyte: il6\n    system: s\n    code: c\n    family: activity\n",
        ["line 5", "unknown family 'activity'"],
    ),
    (
        "codes:\n  - analyte: ferritin\n    system: http://loinc.org\n    code: 26881-3\n",
        ["line 4", "already means 'il6'"],
    ),
    ("codes:\n  - analyte: il6\n    system: s\n", ["line 2", "codes.0.code", "Field required"]),
    (
        "codes:\n  - analyte: il6\n    system: s\n    code: c\n    colour: red\n",
        ["line 5", "colour"],
    ),
    ("codes: [\n", ["not valid YAML"]),
    ("", ["empty"]),
    ("unit_aliases:\n  weird: 'not a unit!'\n", ["line 2", "not a valid UCUM code"]),
]


@pytest.mark.parametrize(("text", "fragments"), BAD_LOCAL_FILES)
def test_invalid_local_codes_file_names_the_file_and_the_problem(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    path = tmp_path / "hospital-codes.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError) as raised:
        load_catalog(path)
    message = str(raised.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_missing_local_codes_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read local codes file"):
        load_catalog(tmp_path / "absent.yaml")


def test_code_query_for_prefetch_templates(catalog: Catalog) -> None:
    assert (
        catalog.code_query("il6", "ferritin") == "http://loinc.org|26881-3,http://loinc.org|2276-4"
    )
    query = catalog.code_query("sil2r")
    assert query.split(",") == [
        "http://loinc.org|76039-7",
        "http://loinc.org|44422-4",
        f"{LOCAL}|sil2r-u",
    ]
