"""The one FHIR Bundle reader: entries, next links, OperationOutcome entries, lenient accessors."""

import json
from pathlib import Path
from typing import Any

import pytest

from cds_service.evidence.bundles import (
    as_list,
    entry_resources,
    next_link,
    read_bundle,
    text_at,
)

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "prefetch" / "lab-prefetch-shapes.json"
PREFETCH = json.loads(FIXTURE.read_text(encoding="utf-8"))
OBSERVATION = {"resourceType": "Observation", "id": "o"}


def test_malformed_entries_are_reported_and_skipped() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            None,
            {"resource": "x"},
            {"resource": {"id": "no-type"}},
            {"resource": OBSERVATION},
        ],
    }
    page = read_bundle(bundle, "prefetch:labs")
    assert [r["id"] for r in page.resources] == ["o"]
    assert [(p.code, p.reference) for p in page.problems] == [("malformed", "prefetch:labs")] * 3
    assert page.next_url is None and not page.has_error


@pytest.mark.parametrize(
    ("bundle", "problems"),
    [
        ({"resourceType": "Bundle"}, []),
        ({"resourceType": "Bundle", "entry": None}, []),
        ({"resourceType": "Bundle", "entry": []}, []),
        ({"resourceType": "Bundle", "entry": "Observation/o"}, ["malformed"]),
    ],
)
def test_entry_lists_absent_empty_or_of_another_type(
    bundle: dict[str, Any], problems: list[str]
) -> None:
    read = read_bundle(bundle)
    assert read.resources == []
    assert [p.code for p in read.problems] == problems


def test_one_entry_object_in_place_of_the_array_is_read_as_the_only_entry() -> None:
    read = read_bundle({"resourceType": "Bundle", "entry": {"resource": OBSERVATION}})
    assert (read.resources, read.problems) == ([OBSERVATION], [])


@pytest.mark.parametrize(
    ("severity", "is_error"),
    [("warning", False), ("information", False), ("error", True), ("fatal", True)],
)
def test_operation_outcome_entries_are_problems_not_resources(
    severity: str, is_error: bool
) -> None:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": "processing", "diagnostics": "Patient/p1"}],
    }
    for entry in ({"resource": outcome}, {"resource": outcome, "search": {"mode": "outcome"}}):
        read = read_bundle(
            {"resourceType": "Bundle", "entry": [{"resource": OBSERVATION}, entry]}, "fetch:labs"
        )
        assert read.resources == [OBSERVATION]
        (problem,) = read.problems
        assert (problem.code, problem.reference) == ("operation-outcome", "fetch:labs")
        assert problem.reason == f"OperationOutcome issue: severity {severity}, code processing"
        assert read.has_error is is_error


def test_a_fetched_page_keeps_its_next_link_and_resources() -> None:
    page = read_bundle(PREFETCH["labs"], "fetch:labs")
    assert [r["id"] for r in page.resources] == ["lab-prefetch-il6-d3", "lab-prefetch-crp-d3"]
    assert page.next_url == "http://fhir.example.org/fhir/Observation?patient=lab-prefetch&_page=2"
    assert page.problems == []  # whether the next page is read is the caller's to say


@pytest.mark.parametrize(
    ("links", "expected"),
    [
        (
            [{"relation": "next", "url": "  http://f.example.org/O?p=2\n"}],
            "http://f.example.org/O?p=2",
        ),
        ([{"relation": "self", "url": "s"}, {"relation": "next", "url": "n"}], "n"),
        ([{"relation": "next", "url": "   "}], None),
        ([{"relation": "next", "url": 7}], None),
        ([{"relation": "next"}], None),
        (["next"], None),
        ({"relation": "next", "url": "n"}, None),
        (None, None),
    ],
)
def test_next_link_whitespace_and_shapes(links: Any, expected: str | None) -> None:
    assert next_link({"resourceType": "Bundle", "link": links}) == expected


def test_entry_resources_is_the_lenient_list() -> None:
    bundle = {"entry": [{"resource": OBSERVATION}, {"fullUrl": "x"}, "junk", {"resource": []}]}
    assert entry_resources(bundle) == [OBSERVATION]
    assert entry_resources({"entry": "not a list"}) == []


def test_lenient_accessors() -> None:
    resource = {"subject": {"reference": "Patient/p"}, "code": {"coding": [{"code": 5}]}}
    assert text_at(resource, "subject", "reference") == "Patient/p"
    assert text_at(resource, "subject", "display") is None
    assert text_at(resource, "code", "coding") is None  # a list, not a string
    assert text_at({"subject": "Patient/p"}, "subject", "reference") is None
    assert as_list(resource["code"]["coding"]) == [{"code": 5}]
    assert as_list({"not": "a list"}) == [] and as_list(None) == []
