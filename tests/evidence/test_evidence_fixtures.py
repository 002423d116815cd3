"""Fixture files: valid FHIR R4B, idempotent to load, and read by the evidence layer as intended."""

import json
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from observation_builders import AS_OF

from cds_service.evidence import Catalog, Evidence, build_evidence, load_catalog
from cds_service.fhir import read_prefetch

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PATIENT_FILES = sorted((FIXTURES / "patients").glob("*.json"))
PREFETCH_FILES = sorted((FIXTURES / "prefetch").glob("*.json"))
HOSPITAL_CODES = Path(__file__).parent / "data" / "hospital-codes.yaml"


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", PATIENT_FILES, ids=lambda p: p.name)
def test_patient_fixture_is_a_valid_idempotent_transaction(path: Path) -> None:
    data = _load(path)
    bundle = Bundle.model_validate(data)  # strict R4B validation, fixtures only
    assert bundle.type == "transaction"
    patients = [
        e["resource"]["id"] for e in data["entry"] if e["resource"]["resourceType"] == "Patient"
    ]
    assert len(patients) == 1, "one patient per fixture"
    slug = patients[0]
    for entry in data["entry"]:
        resource = entry["resource"]
        assert entry["request"] == {
            "method": "PUT",
            "url": f"{resource['resourceType']}/{resource['id']}",
        }
        assert resource["id"] == slug or resource["id"].startswith(f"{slug}-"), resource["id"]


def test_fixture_resource_ids_are_unique_across_fixtures() -> None:
    seen: dict[tuple[str, str], str] = {}
    for path in PATIENT_FILES:
        for entry in _load(path)["entry"]:
            key = (entry["resource"]["resourceType"], entry["resource"]["id"])
            assert key not in seen, f"{key} in {path.name} and {seen.get(key)}"
            seen[key] = path.name


@pytest.mark.parametrize("path", PREFETCH_FILES, ids=lambda p: p.name)
def test_prefetch_fixture_values_are_valid_resources(path: Path) -> None:
    for value in _load(path).values():
        if value is not None:
            get_fhir_model_class(value["resourceType"]).model_validate(value)


@pytest.fixture(scope="module")
def edge(catalog: Catalog) -> Evidence:
    return build_evidence([_load(FIXTURES / "patients" / "lab-edge-cases.json")], catalog, AS_OF)


# lab-edge-cases.json: (analyte, value, comparator, unit, family, status, reported)
EDGE_VALUES = [
    ("il6", 380.0, None, "pg/mL", "mass", "final", "380 ng/L"),
    ("ferritin", 5000.0, None, "ng/mL", "mass", "final", "5,000 ug/L"),
    ("il18", 5000.0, ">", "pg/mL", "mass", "final", ">5000 pg/mL"),
    ("ifng", 5.0, "<", "pg/mL", "mass", "final", "<5 pg/mL"),
    ("sil2r", 7500.0, ">=", "U/mL", "activity", "final", ">=7500 U/mL"),
    ("crp", 182.0, None, "mg/L", "mass", "final", "18.2 mg/dL"),
    ("pct", 11.5, None, "ng/mL", "mass", "preliminary", "11.5 ug/L"),
    ("platelets", 82.0, None, "10*9/L", "count", "corrected", "82 K/uL"),
    ("neutrophils", 12.5, None, "10*9/L", "count", "final", "12.5 x10^9/L"),
    ("lymphocytes", 0.45, None, "10*9/L", "count", "final", "450 /uL"),
    ("hemoglobin", 86.0, None, "g/L", "mass", "final", "8.6 g/dL"),
    ("fibrinogen", 1.4, None, "g/L", "mass", "final", "140 mg/dL"),
    ("triglycerides", 3.4, None, "mmol/L", "concentration", "final", "3.4 mmol/L"),
    ("ast", 54.0, None, "U/L", "activity", "final", "0.9 ukat/L"),
    ("ldh", 610.0, None, "U/L", "activity", "final", "610 IU/L"),
    ("temperature", 39.2222222, None, "Cel", "temperature", "final", "102.6 °F"),
    ("ddimer", 6.2, None, "ug/mL{FEU}", "feu", "final", "6.2 mg/L FEU"),
    ("mhla_dr", 9800.0, None, "{molecules}/{cell}", "molecules", "final", "9800 AB/C"),
    ("cxcl9", 600.0, None, "pg/mL", "mass", "final", "600 pg/mL"),
]


@pytest.mark.parametrize(
    ("analyte", "value", "comparator", "unit", "family", "status", "reported"), EDGE_VALUES
)
def test_edge_case_patient_values(
    edge: Evidence,
    analyte: str,
    value: float,
    comparator: str | None,
    unit: str,
    family: str,
    status: str,
    reported: str,
) -> None:
    latest = edge.analytes[analyte].latest
    assert latest.value == pytest.approx(value)
    assert (latest.comparator, latest.unit, latest.family, latest.status, latest.reported) == (
        comparator,
        unit,
        family,
        status,
        reported,
    )


def test_edge_case_patient_trends_and_history(edge: Evidence) -> None:
    assert (edge.analytes["il6"].previous.value, edge.analytes["il6"].trend) == (210.0, "rising")
    assert (edge.analytes["ferritin"].previous.value, edge.analytes["ferritin"].trend) == (
        1850.0,
        "rising",
    )
    assert edge.analytes["ifng"].trend == "unknown"  # "<5" after "<5"
    assert [v.family for v in edge.analytes["sil2r"].history] == ["activity", "mass"]
    assert edge.analytes["sil2r"].previous is None
    assert edge.analytes["ferritin"].latest.reference_high == 400.0


# lab-edge-cases.json: every problem, by Observation
EDGE_PROBLEMS = {
    ("status-ignored", "Observation/lab-edge-il6-registered"),
    ("status-ignored", "Observation/lab-edge-ferritin-eie"),
    ("status-ignored", "Observation/lab-edge-crp-cancelled"),
    ("unknown-code", "Observation/lab-edge-il18-hospital-d2"),
    ("unknown-code", "Observation/lab-edge-culture"),
    ("data-absent", "Observation/lab-edge-il1b-absent"),
    ("unparseable-value", "Observation/lab-edge-il10-garbage"),
    ("future-dated", "Observation/lab-edge-crp-future"),
    ("no-effective-time", "Observation/lab-edge-alt-notime"),
    ("unit-not-convertible", "Observation/lab-edge-mhladr-percent"),
    ("unit-not-convertible", "Observation/lab-edge-tnfa-iu"),
}


def test_edge_case_patient_problems(edge: Evidence) -> None:
    assert {(p.code, p.reference) for p in edge.problems} == EDGE_PROBLEMS
    assert len(edge.problems) == len(EDGE_PROBLEMS)


def test_edge_case_patient_with_the_hospital_codes_file() -> None:
    hospital = load_catalog(HOSPITAL_CODES)
    evidence = build_evidence(
        [_load(FIXTURES / "patients" / "lab-edge-cases.json")], hospital, AS_OF
    )
    il18 = evidence.analytes["il18"]
    assert [(v.value, v.comparator) for v in il18.history] == [(5000.0, ">"), (4800.0, None)]
    assert il18.trend == "unknown"  # ">5000" after 4800: not clearly more than 10 % higher
    assert ("unknown-code", "Observation/lab-edge-il18-hospital-d2") not in {
        (p.code, p.reference) for p in evidence.problems
    }


def test_bench_patient_has_every_analyte_and_no_problem(catalog: Catalog) -> None:
    data = _load(FIXTURES / "patients" / "lab-bench.json")
    assert sum(e["resource"]["resourceType"] == "Observation" for e in data["entry"]) == 60
    evidence = build_evidence([data], catalog, AS_OF)
    assert evidence.problems == ()
    # every lab analyte; the vital signs, the body weight and the white cell count (read by the
    # scores) are not part of the lab bench patient
    vitals = {"spo2", "o2_flow", "fio2", "sbp", "map", "body_weight", "leukocytes"}
    assert set(evidence.analytes) == set(catalog.analyte_ids) - vitals
    panel = "Observation/lab-bench-cytokine-panel-d3"
    from_panel = {a for a, e in evidence.analytes.items() if e.latest.source == panel}
    assert from_panel == {"il1b", "il6", "il10", "il18", "ifng", "tnfa", "sil2r"}
    assert evidence.analytes["il6"].trend == "rising"
    assert len(evidence.analytes["temperature"].history) == 17


def test_prefetch_fixture_end_to_end(catalog: Catalog) -> None:
    prefetch = _load(FIXTURES / "prefetch" / "lab-prefetch-shapes.json")
    read = read_prefetch(prefetch, [*prefetch, "allergies"])
    evidence = build_evidence(read.resources, catalog, AS_OF)
    il6 = evidence.analytes["il6"]
    assert (il6.latest.value, il6.latest.status, len(il6.history)) == (120.0, "amended", 1)
    assert [(p.code, p.reference) for p in evidence.problems] == [
        ("unresolved-result", "Observation/lab-prefetch-il12-d3")
    ]
