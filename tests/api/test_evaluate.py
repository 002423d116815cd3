"""Integration engines: `cytokine-cds evaluate BUNDLE` and POST /evaluate."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import FIXTURES, load_fixture
from tests.servers import cytokine_cds

AT = "2026-11-20T12:00:00Z"  # the time the fixture patients were written for


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return cytokine_cds(*args, timeout=120)


def test_evaluate_prints_the_assessment_and_cards() -> None:
    result = run_cli("evaluate", str(FIXTURES / "patients/css-ifng-hlh.json"), "--at", AT)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["assessment"]["subtype"] == "ifng-driven"
    assert report["assessment"]["evaluated_at"] == "2026-11-20T12:00:00Z"
    (card,) = report["cards"]
    assert card["source"]["topic"]["code"] == "ifngdriven"
    ifng = report["assessment"]["axes"][1]
    assert ifng["axis"] == "ifng" and ifng["elevated"] is True


def test_evaluate_is_as_of_the_given_time() -> None:
    """Five days later every result is past its freshness window: no pattern is claimed."""
    result = run_cli(
        "evaluate", str(FIXTURES / "patients/css-ifng-hlh.json"), "--at", "2026-11-25T12:00:00Z"
    )
    report = json.loads(result.stdout)
    assert report["assessment"]["subtype"] is None
    assert report["cards"] == []
    states = {m["state"] for axis in report["assessment"]["axes"] for m in axis["pivotal"]}
    assert states <= {"stale", "missing", "not-applied"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[" * 5000 + "]" * 5000, "nested deeper than 1024"),  # was a RecursionError traceback
        ('{"resourceType": "Bundle", "total": NaN}', "NaN is not a JSON value"),
        ('{"resourceType": "Patient", "id": "x"}', "expected a FHIR Bundle"),
        ('{"resourceType": "Bundle"}', "no entry list"),
        ('{"resourceType": "Bundle", "entry": []}', "found no patient"),
    ],
)
def test_evaluate_refuses_a_bad_file_with_exit_code_2(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bundle.json"
    path.write_text(content)
    result = run_cli("evaluate", str(path))
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_evaluate_refuses_a_missing_file_and_a_bad_time(tmp_path: Path) -> None:
    missing = run_cli("evaluate", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "cannot be read" in missing.stderr
    bad_time = run_cli("evaluate", str(FIXTURES / "patients/css-mixed.json"), "--at", "monday")
    assert bad_time.returncode == 2 and "ISO 8601" in bad_time.stderr


def test_post_evaluate(client: FlaskClient) -> None:
    """A Bundle carries the chart around the labs: the setting is read from it."""
    bundle = load_fixture("patients/case-cart-day3.json")
    response = client.post(f"/evaluate?at={AT}", json=bundle)
    assert response.status_code == 200
    body: dict[str, Any] = response.get_json()
    assert body["assessment"]["setting"]["setting"] == "iec"
    assert body["assessment"]["state"]["id"] == "crs"
    assert body["cards"][0]["suggestions"][0]["actions"][0]["resource"]["subject"] == {
        "reference": "Patient/case-cart-day3"
    }


@pytest.mark.parametrize(
    ("query", "body", "message"),
    [
        ("?at=yesterday", None, "ISO 8601"),
        ("?at=2026-11-20T12:00:00", None, "time zone"),
        ("?at=0001-01-05T00:00:00Z", None, "between the years 1900 and 2200"),
        ("?at=9999-12-31T23:59:59-12:00", None, "between the years 1900 and 2200"),
        # An unencoded "+" arrives as a space.
        ("?at=2026-11-20T12:00:00+01:00", None, "encode '+' in a query string as %2B"),
        ("", {"resourceType": "Observation"}, "expected a FHIR Bundle"),
    ],
)
def test_post_evaluate_names_bad_input(
    client: FlaskClient, query: str, body: Any, message: str
) -> None:
    payload = body if body is not None else load_fixture("patients/css-il1-mals.json")
    response = client.post(f"/evaluate{query}", json=payload)
    assert response.status_code == 400
    assert message in response.get_json()["issue"][0]["diagnostics"]


def test_demo_request_composes_a_hook_request_with_prefetch() -> None:
    result = run_cli(
        "demo-request", str(FIXTURES / "patients/css-il6-covid.json"),
        "--hook", "order-sign", "--orders", str(FIXTURES / "orders/anakinra.json"),
        "--as-of", AT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    request = json.loads(result.stdout)
    assert request["hook"] == "order-sign"
    assert request["context"]["patientId"] == "css-il6-covid"
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    assert draft["subject"] == {"reference": "Patient/css-il6-covid"}
    cytokines = request["prefetch"]["cytokines"]["entry"]
    assert {e["resource"]["code"]["coding"][0]["code"] for e in cytokines} >= {"26881-3"}
    labs = request["prefetch"]["labs"]["entry"]
    assert all(e["resource"]["id"] not in {c["resource"]["id"] for c in cytokines} for e in labs)


def test_results_of_another_patient_are_left_out_and_reported(client: FlaskClient) -> None:
    bundle = load_fixture("patients/css-il6-covid.json")
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource.get("code", {}).get("coding", [{}])[0].get("code") == "26881-3":
            resource["subject"] = {"reference": "https://ehr.invalid/fhir/Patient/someone-else"}
    body = client.post(f"/evaluate?at={AT}", json=bundle).get_json()
    # Without its own IL-6 results the patient lacks a cytokine group: the panel is asked for.
    assert body["assessment"]["subtype"] == "multiplex-assay-needed"
    assert "IL-6" in body["assessment"]["missing_groups"]
    foreign = [p for p in body["problems"] if p["code"] == "other-patient"]
    assert len(foreign) == 2 and all(p["reference"].startswith("Observation/") for p in foreign)


def test_urn_uuid_subjects_of_a_transaction_bundle_are_kept(client: FlaskClient) -> None:
    bundle = load_fixture("patients/css-il6-covid.json")
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Observation":
            entry["resource"]["subject"] = {
                "reference": "urn:uuid:5b8c3f0e-1d2a-4c6b-9e7f-0a1b2c3d4e5f"
            }
    body = client.post(f"/evaluate?at={AT}", json=bundle).get_json()
    assert body["assessment"]["subtype"] == "il6-driven"


@pytest.mark.parametrize("severity", ["error", "warning"])
def test_an_operation_outcome_in_the_bundle_is_a_data_problem(
    client: FlaskClient, tmp_path: Path, severity: str
) -> None:
    """A Bundle holding an OperationOutcome still gets the cards its data supports, and the
    OperationOutcome is listed as a data problem, by POST /evaluate and by the CLI alike."""
    bundle = load_fixture("patients/css-ifng-hlh.json")
    bundle["entry"].append(
        {
            "resource": {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": severity, "code": "processing"}],
            },
            "search": {"mode": "outcome"},
        }
    )
    response = client.post(f"/evaluate?at={AT}", json=bundle)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    result = run_cli("evaluate", str(path), "--at", AT)
    assert result.returncode == 0, result.stderr
    for report in (body, json.loads(result.stdout)):
        assert report["assessment"]["subtype"] == "ifng-driven"
        assert len(report["cards"]) == 1
        outcomes = [p for p in report["problems"] if p["code"] == "operation-outcome"]
        assert len(outcomes) == 1 and f"severity {severity}" in outcomes[0]["reason"]


@pytest.mark.parametrize("impossible", [-320, 1e300])
def test_impossible_il6_values_are_data_problems_not_a_drug_card(
    client: FlaskClient, impossible: float
) -> None:
    bundle = load_fixture("patients/css-il6-covid.json")
    plain = client.post(f"/evaluate?at={AT}", json=bundle).get_json()
    assert plain["assessment"]["subtype"] == "il6-driven"  # as recorded
    for entry in bundle["entry"]:
        if entry["resource"]["id"].startswith("css-il6-covid-il6-"):
            entry["resource"]["valueQuantity"]["value"] = impossible
    body = client.post(f"/evaluate?at={AT}", json=bundle).get_json()
    assert body["assessment"]["subtype"] != "il6-driven"
    assert not any(
        action.get("resource", {}).get("resourceType") == "MedicationRequest"
        for card in body["cards"]
        for suggestion in card.get("suggestions", [])
        for action in suggestion["actions"]
    )
    flagged = [p for p in body["problems"] if p["code"] == "implausible-value"]
    assert {p["reference"] for p in flagged} == {
        "Observation/css-il6-covid-il6-1",
        "Observation/css-il6-covid-il6-2",
    }


def test_a_lab_time_without_a_zone_is_reported_in_the_answer(client: FlaskClient) -> None:
    bundle = load_fixture("patients/css-il6-covid.json")
    for entry in bundle["entry"]:
        if entry["resource"]["id"] == "css-il6-covid-il6-2":
            entry["resource"]["effectiveDateTime"] = "2026-11-20T06:00:00"
    body = client.post(f"/evaluate?at={AT}", json=bundle).get_json()
    [problem] = [p for p in body["problems"] if p["code"] == "time-without-zone"]
    assert problem["reference"] == "Observation/css-il6-covid-il6-2"
    assert "read as UTC" in problem["reason"]


def test_a_lab_time_beyond_the_calendar_is_no_time_not_a_500(client: FlaskClient) -> None:
    bundle = load_fixture("patients/css-il6-covid.json")
    for entry in bundle["entry"]:
        if entry["resource"]["id"] == "css-il6-covid-il6-2":
            entry["resource"]["effectiveDateTime"] = "9999-12-31T23:59:59-12:00"
    response = client.post(f"/evaluate?at={AT}", json=bundle)
    assert response.status_code == 200
    codes = [p["code"] for p in response.get_json()["problems"]]
    assert "no-effective-time" in codes
