"""The hook and feedback endpoints write the audit trail (Flask test client, real databases)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from sqlalchemy import make_url

from cds_service import create_app
from cds_service.api.runtime import EXTENSION_KEY, current_runtime
from cds_service.auth import VerifiedClient
from cds_service.demo import hook_request
from cds_service.runtime import Runtime
from cds_service.settings import Settings
from cds_service.store import AuditStore
from cds_service.store.database import create_store_engine
from tests.conftest import load_fixture
from tests.store.helpers import (
    StoreEvents,
    feedback_json,
    make_card,
    stored_cards,
    stored_feedback,
    stored_hook_calls,
)

SERVICE = "/cds-services/cytokine-storm-patient-view"
FEEDBACK = SERVICE + "/feedback"


@pytest.fixture
def app(store_settings: Settings) -> Flask:
    app = create_app(store_settings)

    @app.before_request
    def _verified_client() -> None:
        # What the auth layer leaves on flask.g once it has verified the client's JWT.
        g.cds_client = VerifiedClient(
            iss="https://ehr.example.org", tenant="hospital-a", jti="jti-1", kid="key-1"
        )

    return app


@pytest.fixture
def store(app: Flask) -> AuditStore:
    runtime: Runtime = app.extensions[EXTENSION_KEY]
    assert runtime.store is not None
    return runtime.store


def call_hook(client: FlaskClient, patient: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A patient-view call for a fixture patient (dates moved to now): (request, answer)."""
    with client.application.app_context():
        service = current_runtime().services["cytokine-storm-patient-view"]
    body = hook_request(service, load_fixture(f"patients/{patient}.json"), now=datetime.now(UTC))
    response = client.post(SERVICE, json=body)
    assert response.status_code == 200, response.get_json()
    return body, dict(response.get_json())


def test_a_hook_answer_with_cards_is_audited(client: FlaskClient, store: AuditStore) -> None:
    request, answer = call_hook(client, "case-cart-day3")

    [call] = stored_hook_calls(store.engine)
    assert call["hook_instance"] == request["hookInstance"]
    assert call["service_id"] == "cytokine-storm-patient-view"
    assert (call["client_iss"], call["client_tenant"]) == ("https://ehr.example.org", "hospital-a")
    assert call["patient_key"] == store.patient_key("case-cart-day3")
    assert "case-cart-day3" not in str(call)  # pseudonymous: never the raw patient id
    assert call["rules_version"].startswith("2026.12")
    il6 = [e for e in call["evidence"] if e["analyte"] == "il6"]
    assert il6 and il6[0]["value"] == 2000 and il6[0]["unit"] == "pg/mL"
    [card] = stored_cards(store.engine)
    assert card["uuid"] == answer["cards"][0]["uuid"]
    assert card["topic_code"] == "crs"
    assert card["suggestion_uuids"] == [answer["cards"][0]["suggestions"][0]["uuid"]]


def test_a_hook_answer_without_cards_is_not_audited(client: FlaskClient, store: AuditStore) -> None:
    assert call_hook(client, "css-no-inflammation")[1]["cards"] == []
    assert stored_hook_calls(store.engine) == []


def test_a_failing_store_never_fails_the_hook_call(
    client: FlaskClient, store: AuditStore, tmp_path: Path
) -> None:
    # The database goes away under a running service: a file in a folder that does not exist.
    store.engine = create_store_engine(make_url(f"sqlite:///{tmp_path}/gone/audit.db"))
    events = StoreEvents()
    assert len(call_hook(client, "css-il1-mals")[1]["cards"]) == 1
    assert events.counted() == {"audit_write_failures": 1}


def test_feedback_round_trip_through_the_endpoint(client: FlaskClient, store: AuditStore) -> None:
    card = call_hook(client, "case-cart-day3")[1]["cards"][0]
    suggestion = card["suggestions"][0]["uuid"]
    body = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": suggestion}],
                "outcomeTimestamp": "2026-11-20T08:31:02.518Z",
            }
        ]
    }
    for _ in range(3):  # a client retrying after a lost response
        response = client.post(FEEDBACK, json=body)
        assert response.status_code == 200
        assert response.get_json() == {}
    [row] = stored_feedback(store.engine)
    assert row["card_uuid"] == card["uuid"] and row["orphan"] is False
    assert row["accepted_suggestions"] == [suggestion]
    assert row["service_id"] == "cytokine-storm-patient-view"
    assert row["client_iss"] == "https://ehr.example.org"


def test_feedback_for_an_unknown_card_is_200_and_kept_as_orphan(
    client: FlaskClient, store: AuditStore
) -> None:
    body = {"feedback": [feedback_json("card-issued-before-a-restart", accepted=["s-1"])]}
    assert client.post(FEEDBACK, json=body).status_code == 200
    [row] = stored_feedback(store.engine)
    assert row["orphan"] is True


def test_sandbox_dismissal_is_stored_with_its_reason(
    client: FlaskClient, store: AuditStore
) -> None:
    card = make_card()
    body = {
        "feedback": [
            {
                "card": card.uuid,
                "outcome": "overridden",
                "overrideReason": {"reason": {"code": "patient-declined", "system": "x"}},
                "outcomeTimestamp": "2026-11-20T08:31:02.518Z",
            }
        ]
    }
    assert client.post(FEEDBACK, json=body).status_code == 200
    [row] = stored_feedback(store.engine)
    assert (row["override_reason_system"], row["override_reason_code"]) == ("x", "patient-declined")
    assert row["override_comment"] is None


def test_invalid_feedback_is_400_and_stores_nothing(client: FlaskClient, store: AuditStore) -> None:
    good = feedback_json(make_card())
    bad = feedback_json(make_card(), outcome="ignored")
    response = client.post(FEEDBACK, json={"feedback": [good, bad]})
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == ["feedback.1.outcome"]
    assert stored_feedback(store.engine) == []


def test_an_over_long_card_id_is_400_naming_it(client: FlaskClient, store: AuditStore) -> None:
    response = client.post(FEEDBACK, json={"feedback": [feedback_json("x" * 500, accepted=["s"])]})
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == ["feedback.0.card"]
    assert stored_feedback(store.engine) == []


def test_feedback_accepting_a_suggestion_the_card_never_had_is_400_and_not_stored(
    client: FlaskClient, store: AuditStore
) -> None:
    from cds_service.store import report

    pattern = call_hook(client, "css-il6-covid")[1]["cards"][0]  # a pattern card: no suggestion
    assert pattern["source"]["topic"]["code"] == "il6driven" and "suggestions" not in pattern
    crs = call_hook(client, "case-cart-day3")[1]["cards"][0]
    good = feedback_json(crs["uuid"], accepted=[crs["suggestions"][0]["uuid"]])
    response = client.post(
        FEEDBACK,
        json={"feedback": [good, feedback_json(pattern["uuid"], accepted=["not-a-uuid"])]},
    )
    assert response.status_code == 400, response.get_json()
    issue = response.get_json()["issue"][0]
    assert issue["expression"] == ["feedback.1.acceptedSuggestions.0.id"]
    assert "'not-a-uuid'" in issue["diagnostics"] and pattern["uuid"] in issue["diagnostics"]
    assert stored_feedback(store.engine) == []  # the whole body refused: nothing stored
    counted = report.build_report(store.engine, None)
    assert all(topic.accepted == 0 for topic in counted.topics)

    # The card's own suggestion is accepted as before.
    assert client.post(FEEDBACK, json={"feedback": [good]}).status_code == 200
    [row] = stored_feedback(store.engine)
    assert row["accepted_suggestions"] == [crs["suggestions"][0]["uuid"]]


def test_feedback_on_another_services_endpoint_is_400_and_not_stored(
    client: FlaskClient, store: AuditStore
) -> None:
    """A card the patient-view service returned, reported to the order-sign service's
    /feedback, would be counted for the wrong service: refused, naming the right endpoint."""
    card = call_hook(client, "case-cart-day3")[1]["cards"][0]
    other = "/cds-services/cytokine-storm-order-sign/feedback"
    item = feedback_json(card["uuid"], accepted=[card["suggestions"][0]["uuid"]])
    response = client.post(other, json={"feedback": [item]})
    assert response.status_code == 400, response.get_json()
    issue = response.get_json()["issue"][0]
    assert issue["expression"] == ["feedback.0.card"]
    assert "/cds-services/cytokine-storm-patient-view/feedback" in issue["diagnostics"]
    assert stored_feedback(store.engine) == []
    assert client.post(FEEDBACK, json={"feedback": [item]}).status_code == 200
