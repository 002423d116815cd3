"""Components, DiagnosticReports, Bundle shapes, unit families and reference ranges."""

from typing import Any

import pytest
from observation_builders import (
    AS_OF,
    LOCAL,
    LOINC,
    code,
    observation,
    quantity,
    reference_range,
    searchset,
)

from cds_service.evidence import Catalog, build_evidence


def _component(analyte: str, value: float, unit: str, **fields: Any) -> dict[str, Any]:
    return {"code": code(analyte), "valueQuantity": quantity(value, unit), **fields}


def _panel(*components: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "panel",
        "status": "final",
        "code": {"coding": [{"system": "http://hospital.example.org/codes", "code": "CYTOPNL"}]},
        "effectiveDateTime": "2026-11-20T06:00:00Z",
        "component": list(components),
        **fields,
    }


def test_multiplex_panel_is_read_component_by_component(catalog: Catalog) -> None:
    panel = _panel(
        _component(
            "il6",
            0.165,
            "ng/mL",
            referenceRange=reference_range(high=2.5, unit="pg/mL"),
            interpretation=[{"coding": [{"code": "H"}]}],
        ),
        _component("il18", 640, "pg/mL"),
        _component("ifng", 5, "pg/mL") | {"valueQuantity": quantity(5, "pg/mL", comparator="<")},
        {"code": {"text": "GM-CSF"}, "valueQuantity": quantity(6.2, "pg/mL")},  # not in the catalog
        {"code": code("il10"), "dataAbsentReason": {"coding": [{"code": "error"}]}},
        interpretation=[{"coding": [{"code": "A"}]}],
    )
    evidence = build_evidence([panel], catalog, AS_OF)
    il6 = evidence.analytes["il6"].latest
    assert (il6.value, il6.reference_high, il6.interpretation) == (165.0, 2.5, ("H",))
    assert (il6.source, il6.component) == ("Observation/panel", f"{LOINC}|26881-3")
    assert evidence.analytes["il18"].latest.component == f"{LOCAL}|il-18"
    assert (
        evidence.analytes["ifng"].latest.value,
        evidence.analytes["ifng"].latest.comparator,
    ) == (5.0, "<")
    assert set(evidence.analytes) == {"il6", "il18", "ifng"}
    assert [(p.code, p.analyte, p.reference) for p in evidence.problems] == [
        ("data-absent", "il10", "Observation/panel")
    ]


def test_cancelled_panel_ignores_all_its_components(catalog: Catalog) -> None:
    panel = _panel(
        _component("il6", 10, "pg/mL"), _component("tnfa", 4, "pg/mL"), status="cancelled"
    )
    evidence = build_evidence([panel], catalog, AS_OF)
    assert evidence.analytes == {}
    assert sorted((p.code, p.analyte) for p in evidence.problems) == [
        ("status-ignored", "il6"),
        ("status-ignored", "tnfa"),
    ]


def test_panel_without_catalog_codes_is_one_unknown_code_problem(catalog: Catalog) -> None:
    panel = _panel({"code": {"text": "GM-CSF"}, "valueQuantity": quantity(6.2, "pg/mL")})
    evidence = build_evidence([panel], catalog, AS_OF)
    assert [(p.code, p.reference) for p in evidence.problems] == [
        ("unknown-code", "Observation/panel")
    ]


def test_diagnostic_report_contained_and_referenced_observations(catalog: Catalog) -> None:
    contained = {
        "resourceType": "Observation",
        "id": "c1",
        "status": "final",
        "code": code("cxcl9"),
        "valueQuantity": quantity(600, "pg/mL"),
    }  # no time of its own
    referenced = observation("il10", id="il10-1", when=None, valueQuantity=quantity(21, "pg/mL"))
    report = {
        "resourceType": "DiagnosticReport",
        "id": "r1",
        "status": "final",
        "code": {"text": "panel"},
        "effectiveDateTime": "2026-11-20T05:00:00Z",
        "contained": [contained],
        "result": [
            {"reference": "#c1"},
            {"reference": "Observation/il10-1"},
            {"reference": "Observation/never-sent"},
        ],
    }
    evidence = build_evidence([searchset(report, referenced)], catalog, AS_OF)
    cxcl9 = evidence.analytes["cxcl9"].latest
    assert (cxcl9.value, cxcl9.source) == (600.0, "DiagnosticReport/r1#c1")
    assert cxcl9.effective.isoformat() == "2026-11-20T05:00:00+00:00"  # the report's time
    assert evidence.analytes["il10"].latest.effective.hour == 5
    assert [(p.code, p.reference) for p in evidence.problems] == [
        ("unresolved-result", "Observation/never-sent")
    ]


# Bundle shapes: (input items, expected IL-6 values newest first, expected problem codes)
IL6_A = observation("il6", id="a", when="2026-11-19T06:00:00Z", valueQuantity=quantity(80, "pg/mL"))
IL6_B = observation("il6", id="b", valueQuantity=quantity(120, "pg/mL"))
OUTCOME = {
    "resourceType": "OperationOutcome",
    "issue": [
        {"severity": "error", "code": "timeout", "diagnostics": "Patient/123 query timed out"}
    ],
}
BUNDLE_SHAPES = [
    ([IL6_A, IL6_B], [120, 80], []),
    ([searchset(IL6_A, IL6_B)], [120, 80], []),
    ([searchset(IL6_A), searchset(IL6_B)], [120, 80], []),
    (
        [searchset(IL6_A, next_url="http://fhir.example.org/Observation?page=2")],
        [80],
        ["incomplete-bundle"],
    ),
    ([searchset(searchset(IL6_A))], [80], []),  # nested
    (
        [
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {"resource": IL6_B, "request": {"method": "PUT", "url": "Observation/b"}}
                ],
            }
        ],
        [120],
        [],
    ),
    ([searchset()], [], []),
    ([{"resourceType": "Bundle", "type": "searchset"}], [], []),
    (
        [
            searchset(IL6_A)
            | {"entry": [{"resource": IL6_A}, {"resource": OUTCOME, "search": {"mode": "outcome"}}]}
        ],
        [80],
        ["operation-outcome"],
    ),
    ([OUTCOME], [], ["operation-outcome"]),
    ([IL6_A, IL6_A], [80], []),  # the same resource twice (two prefetch keys)
    ([{"resourceType": "Patient", "id": "p"}, IL6_B], [120], []),
]


@pytest.mark.parametrize(("items", "values", "problems"), BUNDLE_SHAPES)
def test_bundle_shapes(
    catalog: Catalog, items: list[Any], values: list[float], problems: list[str]
) -> None:
    evidence = build_evidence(items, catalog, AS_OF)
    found = evidence.get("il6")
    assert ([v.value for v in found.history] if found else []) == values
    assert [p.code for p in evidence.problems] == problems


def test_operation_outcome_free_text_is_not_copied(catalog: Catalog) -> None:
    (problem,) = build_evidence([OUTCOME], catalog, AS_OF).problems
    assert "123" not in problem.reason
    assert problem.reason == "OperationOutcome issue: severity error, code timeout"


def test_unit_families_are_never_converted_into_each_other(catalog: Catalog) -> None:
    mass_old = observation(
        "sil2r", id="m1", when="2026-11-17T06:00:00Z", valueQuantity=quantity(1500, "pg/mL")
    )
    mass = observation(
        "sil2r", id="m2", when="2026-11-19T06:00:00Z", valueQuantity=quantity(9800, "pg/mL")
    )
    activity = observation("sil2r_u", id="u1", valueQuantity=quantity(3100, "U/mL"))
    evidence = build_evidence([mass_old, mass, activity], catalog, AS_OF)
    sil2r = evidence.analytes["sil2r"]
    assert (sil2r.latest.family, sil2r.latest.unit, sil2r.latest.value) == (
        "activity",
        "U/mL",
        3100.0,
    )
    assert sil2r.previous is None and sil2r.trend == "unknown"  # no earlier U/mL result
    assert [(v.family, v.value) for v in sil2r.history] == [
        ("activity", 3100.0),
        ("mass", 9800.0),
        ("mass", 1500.0),
    ]


def test_a_code_bound_to_one_family_refuses_the_other_familys_unit(catalog: Catalog) -> None:
    # 76039-7 is a pg/mL assay: a U/mL value under it is not converted, nor moved to "activity".
    evidence = build_evidence(
        [observation("sil2r", id="x", valueQuantity=quantity(3100, "U/mL"))], catalog, AS_OF
    )
    assert evidence.get("sil2r") is None
    assert [(p.code, p.analyte) for p in evidence.problems] == [("unit-not-convertible", "sil2r")]


# (referenceRange, expected low, expected high, expected problems)
REFERENCE_RANGES = [
    (reference_range(30, 400, "ng/mL"), 30.0, 400.0, []),
    (reference_range(30, 400, "ug/L"), 30.0, 400.0, []),
    (reference_range(0.03, 0.4, "mg/L"), 30.0, 400.0, []),
    ([{"low": {"value": 0.03}, "high": {"value": 0.4}}], 30.0, 400.0, []),  # the value's unit
    ([{"high": {"value": 400000, "unit": "ng/L"}}], None, 400.0, []),
    (reference_range(30, 400, "mmol/L"), None, None, ["reference-range-not-convertible"]),
    (
        [
            {"type": {"coding": [{"code": "treatment"}]}, "high": quantity(1000, "ng/mL")},
            {"type": {"coding": [{"code": "normal"}]}, "high": quantity(400, "ng/mL")},
        ],
        None,
        400.0,
        [],
    ),
    ([{"text": "30-400"}], None, None, []),
    ("30-400", None, None, []),
]


@pytest.mark.parametrize(("ranges", "low", "high", "problems"), REFERENCE_RANGES)
def test_reference_range_is_converted_like_the_value(
    catalog: Catalog, ranges: Any, low: float | None, high: float | None, problems: list[str]
) -> None:
    obs = observation("ferritin", valueQuantity=quantity(0.5, "mg/L"), referenceRange=ranges)
    evidence = build_evidence([obs], catalog, AS_OF)
    latest = evidence.analytes["ferritin"].latest
    assert latest.value == pytest.approx(500.0)
    assert latest.reference_low == (pytest.approx(low) if low is not None else None)
    assert latest.reference_high == (pytest.approx(high) if high is not None else None)
    assert [p.code for p in evidence.problems] == problems


def test_interpretation_codes_are_kept(catalog: Catalog) -> None:
    interp = [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                    "code": "HH",
                }
            ]
        },
        {"coding": [{"code": "A"}]},
    ]
    obs = observation("ferritin", valueQuantity=quantity(9000, "ng/mL"), interpretation=interp)
    assert build_evidence([obs], catalog, AS_OF).analytes["ferritin"].latest.interpretation == (
        "HH",
        "A",
    )


def test_same_analyte_under_different_codes_is_one_analyte(catalog: Catalog) -> None:
    molar = {
        "resourceType": "Observation",
        "id": "tg2",
        "status": "final",
        "code": {"coding": [{"system": "urn:oid:2.16.840.1.113883.6.1", "code": "35217-9"}]},
        "effectiveDateTime": "2026-11-20T06:00:00Z",
        "valueQuantity": quantity(3.4, "mmol/L"),
    }
    mass = observation(
        "triglycerides", id="tg1", when="2026-11-18T06:00:00Z", valueQuantity=quantity(265, "mg/dL")
    )
    tg = build_evidence([molar, mass], catalog, AS_OF).analytes["triglycerides"]
    assert [round(v.value, 3) for v in tg.history] == [3.4, 2.992]
    assert tg.trend == "rising"
    assert tg.latest.code == "urn:oid:2.16.840.1.113883.6.1|35217-9"
