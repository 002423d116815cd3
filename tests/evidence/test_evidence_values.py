"""Value forms: Quantity comparators, value strings, ranges, integers, absent data."""

from typing import Any

import pytest
from observation_builders import AS_OF, observation, quantity, reference_range

from cds_service.evidence import Catalog, build_evidence
from cds_service.evidence.values import parse_value_string

PG = reference_range(high=7.0, unit="pg/mL")

# (fields of the IL-6 Observation, value, comparator, upper, reported)
READABLE = [
    ({"valueQuantity": quantity(12, "pg/mL")}, 12.0, None, None, "12 pg/mL"),
    ({"valueQuantity": quantity(5, "pg/mL", comparator="<")}, 5.0, "<", None, "<5 pg/mL"),
    ({"valueQuantity": quantity(5, "pg/mL", comparator="<=")}, 5.0, "<=", None, "<=5 pg/mL"),
    ({"valueQuantity": quantity(5000, "pg/mL", comparator=">")}, 5000.0, ">", None, ">5000 pg/mL"),
    (
        {"valueQuantity": quantity(5000, "pg/mL", comparator=">=")},
        5000.0,
        ">=",
        None,
        ">=5000 pg/mL",
    ),
    ({"valueQuantity": quantity(0.005, "ng/mL", comparator="<")}, 5.0, "<", None, "<0.005 ng/mL"),
    ({"valueString": "<5", "referenceRange": PG}, 5.0, "<", None, "<5 pg/mL"),
    ({"valueString": "< 5 pg/mL"}, 5.0, "<", None, "< 5 pg/mL"),
    ({"valueString": "<=5", "referenceRange": PG}, 5.0, "<=", None, "<=5 pg/mL"),
    ({"valueString": "≤5", "referenceRange": PG}, 5.0, "<=", None, "≤5 pg/mL"),
    ({"valueString": "> 5000", "referenceRange": PG}, 5000.0, ">", None, "> 5000 pg/mL"),
    ({"valueString": ">=5000 pg/mL"}, 5000.0, ">=", None, ">=5000 pg/mL"),
    ({"valueString": "5,000", "referenceRange": PG}, 5000.0, None, None, "5,000 pg/mL"),
    ({"valueString": "1,234,567.5 pg/mL"}, 1234567.5, None, None, "1,234,567.5 pg/mL"),
    ({"valueString": "0.5 ng/mL"}, 500.0, None, None, "0.5 ng/mL"),  # unit in the string, x1000
    (
        {"valueString": "<5", "referenceRange": reference_range(high=0.007, unit="ng/mL")},
        5000.0,
        "<",
        None,
        "<5 ng/mL",
    ),
    ({"valueInteger": 42, "referenceRange": PG}, 42.0, None, None, "42 pg/mL"),
    ({"valueQuantity": {"value": 9}, "referenceRange": PG}, 9.0, None, None, "9 pg/mL"),
    (
        {"valueRange": {"low": quantity(10, "pg/mL"), "high": quantity(20, "pg/mL")}},
        10.0,
        ">=",
        20.0,
        "10-20 pg/mL",
    ),
    (
        {"valueRange": {"low": quantity(0.01, "ng/mL"), "high": quantity(0.02, "ng/mL")}},
        10.0,
        ">=",
        20.0,
        "0.01-0.02 ng/mL",
    ),
    ({"valueRange": {"low": quantity(7500, "pg/mL")}}, 7500.0, ">=", None, ">=7500 pg/mL"),
    ({"valueRange": {"high": quantity(2, "pg/mL")}}, 2.0, "<=", None, "<=2 pg/mL"),
]


@pytest.mark.parametrize(("fields", "value", "comparator", "upper", "reported"), READABLE)
def test_value_forms_are_read(
    catalog: Catalog,
    fields: dict[str, Any],
    value: float,
    comparator: str | None,
    upper: float | None,
    reported: str,
) -> None:
    evidence = build_evidence([observation("il6", **fields)], catalog, AS_OF)
    assert evidence.problems == ()
    latest = evidence.analytes["il6"].latest
    assert latest.value == pytest.approx(value)
    assert (latest.comparator, latest.reported) == (comparator, reported)
    assert latest.upper == (pytest.approx(upper) if upper is not None else None)


def test_below_detection_is_below_x_never_zero(catalog: Catalog) -> None:
    evidence = build_evidence([observation("ifng", valueString="<5 pg/mL")], catalog, AS_OF)
    latest = evidence.analytes["ifng"].latest
    assert (latest.value, latest.comparator) == (5.0, "<")


# (fields, problem code)
UNREADABLE = [
    ({"valueString": "<5"}, "unit-missing"),  # no unit anywhere
    ({"valueQuantity": {"value": 9}}, "unit-missing"),
    ({"valueString": "see comment"}, "unparseable-value"),
    ({"valueString": "1,5 pg/mL"}, "unparseable-value"),  # decimal comma or thousands? ambiguous
    ({"valueString": "5 000 pg/mL"}, "unparseable-value"),
    ({"valueString": ""}, "unparseable-value"),
    ({"valueString": 5}, "malformed"),
    ({"valueQuantity": quantity(5, "pg/mL", comparator="ad")}, "unparseable-value"),
    ({"valueQuantity": quantity("12", "pg/mL")}, "no-value"),
    ({"valueQuantity": quantity(True, "pg/mL")}, "no-value"),
    ({"valueQuantity": quantity(float("nan"), "pg/mL")}, "no-value"),
    ({"valueQuantity": "12 pg/mL"}, "malformed"),
    ({"valueRange": {"low": quantity(20, "pg/mL"), "high": quantity(10, "pg/mL")}}, "malformed"),
    (
        {"valueRange": {"low": quantity(1, "pg/mL"), "high": quantity(1, "U/mL")}},
        "unit-not-convertible",
    ),
    ({"valueRange": {}}, "no-value"),
    ({"valueInteger": "seven"}, "malformed"),
    ({"valueCodeableConcept": {"text": "positive"}}, "no-value"),
    ({"valueBoolean": True}, "no-value"),
    ({}, "no-value"),
    ({"dataAbsentReason": {"coding": [{"code": "not-performed"}]}}, "data-absent"),
]


@pytest.mark.parametrize(("fields", "problem"), UNREADABLE)
def test_unreadable_values_become_data_problems(
    catalog: Catalog, fields: dict[str, Any], problem: str
) -> None:
    evidence = build_evidence([observation("il6", id="bad", **fields)], catalog, AS_OF)
    assert evidence.get("il6") is None
    assert [(p.code, p.reference, p.analyte) for p in evidence.problems] == [
        (problem, "Observation/bad", "il6")
    ]


def test_data_absent_reason_is_reported_by_code_not_free_text(catalog: Catalog) -> None:
    reason = {"coding": [{"code": "error"}], "text": "haemolysed sample of Jane Doe"}
    evidence = build_evidence([observation("il1b", dataAbsentReason=reason)], catalog, AS_OF)
    (problem,) = evidence.problems
    assert problem.reason == "dataAbsentReason: error"


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("<5", (5.0, "<", None)),
        ("  >  5000  ", (5000.0, ">", None)),
        ("5,000", (5000.0, None, None)),
        ("12.5 x10^9/L", (12.5, None, "x10^9/L")),
        ("1.2e3 pg/mL", (1200.0, None, "pg/mL")),
        ("≥ 3", (3.0, ">=", None)),
        ("-0.5 Cel", (-0.5, None, "Cel")),
        ("5,00", None),
        ("positive", None),
        ("<", None),
    ],
)
def test_parse_value_string(text: str, parsed: tuple[float, str | None, str | None] | None) -> None:
    assert parse_value_string(text) == parsed
