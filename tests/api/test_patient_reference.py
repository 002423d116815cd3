"""context.patientId as clients send it: a bare id or a "Patient/<id>" reference, both read as
the same patient; a call whose data all names another patient says so on a card."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

from cds_service import create_app
from cds_service.api.runtime import EXTENSION_KEY, current_runtime
from cds_service.demo import hook_request
from cds_service.runtime import Runtime
from cds_service.settings import Settings
from tests.conftest import hook_body, load_fixture

PATIENT = "case-cart-day3"
PV = "cytokine-storm-patient-view"


def demo_body(client: FlaskClient, patient: str = PATIENT) -> dict[str, Any]:
    with client.application.app_context():
        service = current_runtime().services[PV]
    return hook_request(service, load_fixture(f"patients/{patient}.json"), now=datetime.now(UTC))


def summaries(response: Any) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [card["summary"] for card in response.get_json()["cards"]]


def test_a_patient_reference_in_context_is_read_as_the_id(client: FlaskClient) -> None:
    body = demo_body(client)
    bare = summaries(client.post(f"/cds-services/{PV}", json=body))
    assert any("ASTCT CRS grade 2" in s for s in bare), bare
    referenced = copy.deepcopy(body)
    referenced["context"]["patientId"] = f"Patient/{PATIENT}"
    assert summaries(client.post(f"/cds-services/{PV}", json=referenced)) == bare


@pytest.mark.parametrize("patient_id", ["Patient/", "Practitioner/x", "Patient/a/b"])
def test_a_patient_id_that_cannot_name_a_patient_is_refused(
    client: FlaskClient, patient_id: str
) -> None:
    body = demo_body(client)
    body["context"]["patientId"] = patient_id
    response = client.post(f"/cds-services/{PV}", json=body)
    assert response.status_code == 400, response.get_json()
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "context.patientId" in str(outcome["issue"][0])


def test_data_that_all_names_another_patient_is_said_on_a_card(client: FlaskClient) -> None:
    body = demo_body(client)
    body["context"]["patientId"] = "someone-else"
    body["prefetch"].pop("patient")  # the chart read for someone else's labs and infusion
    cards = client.post(f"/cds-services/{PV}", json=body).get_json()["cards"]
    assert len(cards) == 1, cards
    [card] = cards
    assert card["source"]["topic"]["code"] == "dataincomplete"
    assert card["indicator"] == "info"
    assert "another patient" in card["detail"]
    assert "someone-else" not in card["detail"] and PATIENT not in card["detail"]


def test_some_results_naming_another_patient_are_said_beside_the_advice(
    client: FlaskClient,
) -> None:
    """One of the labs names another patient: the advice stands on this chart's own data, and
    the card that says so names no one (neither id is copied into it)."""
    body = demo_body(client)
    ordinary = summaries(client.post(f"/cds-services/{PV}", json=body))
    labs = body["prefetch"]["labs"]["entry"]
    stray = copy.deepcopy(labs[0])
    stray["resource"]["id"] = "stray-result"
    stray["resource"]["subject"] = {"reference": "Patient/someone-else"}
    labs.append(stray)
    cards = client.post(f"/cds-services/{PV}", json=body).get_json()["cards"]
    assert [card["summary"] for card in cards[:-1]] == ordinary
    gap = cards[-1]
    assert gap["source"]["topic"]["code"] == "dataincomplete"
    assert "1 of the results and chart entries received name another patient" in gap["detail"]
    assert "(only partly read)" in gap["detail"]
    assert "someone-else" not in str(gap) and "stray-result" not in str(gap)


def test_a_patient_resource_of_someone_else_gives_the_chart_no_age(client: FlaskClient) -> None:
    """The `patient` prefetch answered with another patient (an 8-year-old): their birth date
    would move this adult onto children's blood-pressure cut-offs. It is left out and counted."""
    body = demo_body(client)
    ordinary = summaries(client.post(f"/cds-services/{PV}", json=body))
    patient = body["prefetch"]["patient"]
    assert patient["resourceType"] == "Patient" and patient["id"] == PATIENT
    patient.update(id="someone-else", birthDate=f"{datetime.now(UTC).year - 8}-06-01")
    cards = client.post(f"/cds-services/{PV}", json=body).get_json()["cards"]
    assert [card["summary"] for card in cards[:-1]] == ordinary
    gap = cards[-1]
    assert gap["source"]["topic"]["code"] == "dataincomplete"
    assert "1 of the results and chart entries received name another patient" in gap["detail"]
    assert "someone-else" not in str(cards)


def test_a_draft_order_for_someone_else_is_not_judged_against_this_chart(
    client: FlaskClient,
) -> None:
    """Tocilizumab in bacterial sepsis gets a mismatch warning; the same draft naming another
    patient as its subject is not judged here (it is not this chart's order), and is counted."""
    path, body = hook_body(client, "order-sign", "case-sepsis-il6", "tocilizumab")
    topics = [c["source"]["topic"]["code"] for c in client.post(path, json=body).json["cards"]]
    assert "ordermismatch" in topics
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    order["subject"] = {"reference": "Patient/someone-else"}
    cards = client.post(path, json=body).get_json()["cards"]
    assert "ordermismatch" not in [c["source"]["topic"]["code"] for c in cards]
    gap = cards[-1]
    assert gap["source"]["topic"]["code"] == "dataincomplete"
    assert (
        "draft orders naming another patient than the chart's (context.patientId) were not "
        "judged against this chart: 1 of 1"
    ) in gap["detail"]
    assert "results and chart entries" not in gap["detail"]  # the labs were this patient's
    assert gap["summary"].startswith("Some data received names another patient and was not used")
    assert "someone-else" not in str(cards)


@pytest.fixture
def fhir_client(fhir_server: str) -> Iterator[FlaskClient]:
    app = create_app(Settings(auth="off", fhir_allowlist=[fhir_server]))
    with app.test_client() as client:
        yield client
    runtime: Runtime = app.extensions[EXTENSION_KEY]
    runtime.fhir.close()


def test_a_patient_reference_reads_the_same_data_from_the_fhir_server(
    fhir_client: FlaskClient, fhir_server: str
) -> None:
    """No prefetch: the searches must be for the patient's id, not for "Patient/Patient/<id>"."""
    body = demo_body(fhir_client)
    del body["prefetch"]
    body["fhirServer"] = fhir_server
    answers = []
    for patient_id in (PATIENT, f"Patient/{PATIENT}"):
        body["context"]["patientId"] = patient_id
        # The server holds the fixture with its own (old) dates: the two answers must match.
        response = fhir_client.post(f"/cds-services/{PV}", json=body)
        assert response.status_code == 200, response.get_json()
        answers.append([c["summary"] for c in response.get_json()["cards"]])
    assert answers[1] == answers[0]
