"""Reading CDS Hooks prefetch: key states, OperationOutcomes, paging and duplicates."""

import json
from pathlib import Path
from typing import Any

import pytest

from cds_service.fhir import read_prefetch

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "prefetch" / "lab-prefetch-shapes.json"
PREFETCH = json.loads(FIXTURE.read_text(encoding="utf-8"))
EXPECTED = [*PREFETCH, "allergies"]  # "allergies" was asked for but not sent

# (key, state, problem codes of the key)
KEY_STATES = [
    ("patient", "satisfied", []),
    ("labs", "incomplete", ["incomplete-bundle"]),
    ("cytokines", "satisfied", ["operation-outcome"]),  # a warning outcome beside the result
    ("ferritin", "error", ["operation-outcome"]),  # an error outcome inside the Bundle
    ("vitals", "error", ["operation-outcome"]),  # the value is an OperationOutcome
    ("medications", "null", []),  # queried, nothing found: do not query again
    ("conditions", "satisfied", []),  # an empty searchset means the same as null
    ("reports", "satisfied", []),
    ("allergies", "missing", []),
]


@pytest.mark.parametrize(("key", "state", "problems"), KEY_STATES)
def test_prefetch_key_states(key: str, state: str, problems: list[str]) -> None:
    status = read_prefetch(PREFETCH, EXPECTED).keys[key]
    assert (status.key, status.state) == (key, state)
    assert [p.code for p in status.problems] == problems
    assert all(p.reference == f"prefetch:{key}" for p in status.problems)


def test_incomplete_key_gives_the_next_page_url() -> None:
    read = read_prefetch(PREFETCH, EXPECTED)
    assert (
        read.keys["labs"].next_url
        == "http://fhir.example.org/fhir/Observation?patient=lab-prefetch&_page=2"
    )


def test_operation_outcome_issues_are_collected_without_free_text() -> None:
    read = read_prefetch(PREFETCH, EXPECTED)
    reasons = {p.reference: p.reason for p in read.problems if p.code == "operation-outcome"}
    assert reasons == {
        "prefetch:cytokines": "OperationOutcome issue: severity warning, code processing",
        "prefetch:ferritin": "OperationOutcome issue: severity error, code timeout",
        "prefetch:vitals": "OperationOutcome issue: severity error, code exception",
    }


def test_resources_are_merged_across_keys_keeping_the_newest_revision() -> None:
    read = read_prefetch(PREFETCH, EXPECTED)
    found = [(r["resourceType"], r["id"], r.get("status")) for r in read.resources]
    assert found == [
        ("Patient", "lab-prefetch", None),
        (
            "Observation",
            "lab-prefetch-il6-d3",
            "amended",
        ),  # version 2 from "cytokines" replaces version 1
        ("Observation", "lab-prefetch-crp-d3", "final"),
        ("Observation", "lab-prefetch-ferritin-d3", "final"),  # still returned beside the error
        ("DiagnosticReport", "lab-prefetch-report-d3", "final"),
    ]


def test_two_keys_sending_different_copies_of_one_result_are_reported() -> None:
    def crp(value: float) -> dict[str, Any]:
        return {
            "resourceType": "Observation",
            "id": "crp-1",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "1988-5"}]},
            "valueQuantity": {"value": value, "unit": "mg/L"},
        }

    def bundle(resource: dict[str, Any]) -> dict[str, Any]:
        return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": resource}]}

    read = read_prefetch(
        {"labs": bundle(crp(10)), "cytokines": bundle(crp(90))}, ["labs", "cytokines"]
    )
    assert [r["valueQuantity"]["value"] for r in read.resources] == [10]
    assert [(p.code, p.reference) for p in read.problems] == [
        ("conflicting-copies", "Observation/crp-1")
    ]
    same = read_prefetch(
        {"labs": bundle(crp(10)), "cytokines": bundle(crp(10))}, ["labs", "cytokines"]
    )
    assert same.problems == ()


def test_keys_not_asked_for_are_not_read() -> None:
    read = read_prefetch(PREFETCH, ["patient"])
    assert list(read.keys) == ["patient"]
    assert [r["resourceType"] for r in read.resources] == ["Patient"]


@pytest.mark.parametrize("prefetch", [None, {}])
def test_no_prefetch_means_every_key_is_missing(prefetch: Any) -> None:
    read = read_prefetch(prefetch, ["patient", "labs", "labs"])
    assert {k: s.state for k, s in read.keys.items()} == {"patient": "missing", "labs": "missing"}
    assert read.resources == [] and read.problems == ()


@pytest.mark.parametrize(
    "value",
    ["a string", 42, ["list"], {"no": "resourceType"}, {"resourceType": 7}],
)
def test_a_value_that_is_not_a_resource_is_an_error(value: Any) -> None:
    status = read_prefetch({"labs": value}, ["labs"]).keys["labs"]
    assert status.state == "error"
    assert [p.code for p in status.problems] == ["malformed"]


def test_a_bundle_entry_that_is_no_resource_leaves_the_key_unread() -> None:
    """What that entry held is unknown: the key is an error (queried again, or a data gap), and
    the entries that were read are kept."""
    observation = {"resourceType": "Observation", "id": "o"}
    bundle = {"resourceType": "Bundle", "entry": [{"resource": "x"}, {"resource": observation}]}
    read = read_prefetch({"labs": bundle}, ["labs"])
    assert read.keys["labs"].state == "error"
    assert read.resources == [observation]
    one_object = {"resourceType": "Bundle", "entry": {"resource": observation}}
    assert read_prefetch({"labs": one_object}, ["labs"]).keys["labs"].state == "satisfied"
