"""Epic, as its public CDS Hooks documentation shows it (fixtures/epic/): its request (top-level
`extension` object, Epic scope strings, PractitionerRole user, absolute references), its draft
orders (medicationReference to a sibling Medication entry, or only the display text), its JWT
(RS384, jku + kid, `sub`, `nbf`, `aud` typed in as the service URL, reused for /feedback), and
its batched feedback with `overrideReasons` — through the real endpoints with auth on."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from flask.testing import FlaskClient
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import select

from cds_service import create_app
from cds_service.api.runtime import EXTENSION_KEY, current_runtime
from cds_service.demo import hook_request
from cds_service.fhir.prefetch import read_prefetch
from cds_service.runtime import Runtime
from cds_service.settings import Settings
from cds_service.store.schema import feedback, hook_calls
from tests.conftest import load_fixture
from tests.servers import BIN

PUBLIC_BASE = "https://cds.hospital.example"
JWT = load_fixture("epic/jwt.json")
EPIC_FHIR = JWT["claims"]["iss"]
SERVICE = "/cds-services/cytokine-storm-order-sign"
PATIENT_VIEW = "/cds-services/cytokine-storm-patient-view"


@dataclass
class Epic:
    client: FlaskClient
    key: rsa.RSAPrivateKey
    runtime: Runtime

    def token(self, aud: str) -> str:
        """Signed as Epic documents it: RS384, jku and kid; exp 900 s, nbf 5 min before iat."""
        now = int(time.time())
        claims = {**JWT["claims"], "aud": aud, "jti": str(uuid.uuid4())}
        claims.update(iat=now, exp=now + 900, nbf=now - 300)
        return jwt.encode(claims, self.key, algorithm="RS384", headers=JWT["header"])

    def post(self, path: str, body: Any, aud: str | None = None) -> Any:
        token = self.token(aud or PUBLIC_BASE + path)
        return self.client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def epic(tmp_path: Path) -> Iterator[Epic]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": JWT["header"]["kid"]}
    clients = tmp_path / "trusted-clients.json"
    entry = {
        "iss": EPIC_FHIR,
        "name": "Epic (test organisation)",
        "jku": [JWT["header"]["jku"]],  # listed; the key is pinned, so nothing is fetched
        "jwks": {"keys": [jwk]},
        "sub": JWT["claims"]["sub"],
        "algorithms": ["RS384"],
    }
    clients.write_text(json.dumps({"clients": [entry]}), encoding="utf-8")
    app = create_app(Settings(trusted_clients=clients, public_base_url=PUBLIC_BASE))
    with app.test_client() as client:
        yield Epic(client, key, app.extensions[EXTENSION_KEY])


def absolute(value: Any) -> Any:
    """Epic's search results carry absolute references."""
    if isinstance(value, dict):
        return {
            k: f"{EPIC_FHIR}/{v}" if k == "reference" and isinstance(v, str) else absolute(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [absolute(v) for v in value]
    return value


def epic_request(epic: Epic, fixture: str, patient: str, service_id: str) -> dict[str, Any]:
    """The fixture request with the patient's labs as Epic prefetches them, dated now."""
    body: dict[str, Any] = load_fixture(f"epic/{fixture}")
    with epic.client.application.app_context():
        service = current_runtime().services[service_id]
    composed = hook_request(
        service, load_fixture(f"patients/{patient}.json"), now=datetime.now(UTC)
    )
    body["prefetch"] = absolute(composed["prefetch"])
    body["context"]["patientId"] = patient
    for entry in body["context"].get("draftOrders", {}).get("entry", []):
        if "subject" in entry["resource"]:  # the chart's own orders
            entry["resource"]["subject"] = {"reference": f"Patient/{patient}"}
    return body


def cards_of(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.get_json()
    return list(response.get_json()["cards"])


def test_an_epic_order_sign_with_a_sibling_medication_is_checked(epic: Epic) -> None:
    # Sepsis without MALS: anakinra's label says not to start it during an active infection.
    body = epic_request(epic, "order-sign.json", "case-sepsis-il6", "cytokine-storm-order-sign")
    (card,) = cards_of(epic.post(SERVICE, body))
    assert card["source"]["topic"]["code"] == "ordermismatch"
    assert "anakinra" in card["summary"].lower()
    (remove,) = card["suggestions"]  # no drug is named instead in sepsis
    assert remove["actions"] == [
        {
            "type": "delete",
            "description": remove["actions"][0]["description"],
            "resourceId": "MedicationRequest/eVbW5nZ0Rk6nR3.1",
        }
    ]
    # The trigger that fired is kept with the audit row.
    assert epic.runtime.store is not None
    with epic.runtime.store.engine.connect() as connection:
        row = connection.execute(select(hook_calls.c.trigger_action, hook_calls.c.criteria_id))
        assert row.one() == ("23", "1234567")


def test_an_epic_order_known_only_by_its_display_text_is_checked(epic: Epic) -> None:
    body = epic_request(
        epic, "order-sign-display-only.json", "css-il1-mals", "cytokine-storm-order-sign"
    )  # sepsis with MALS: no IL-6 blockade in sepsis
    (card,) = cards_of(epic.post(SERVICE, body))
    assert card["source"]["topic"]["code"] == "ordermismatch"
    assert "tocilizumab" in card["summary"].lower()
    assert card["suggestions"][0]["actions"][0]["resourceId"] == "MedicationRequest/eDisplayOnly.1"


def test_a_key_epic_left_out_is_a_gap_when_its_fhir_server_may_not_be_read(epic: Epic) -> None:
    # Epic always sends fhirServer; this service's allowlist is empty (the default), so what
    # prefetch lacks cannot be read. The cards prefetch supports still come, with the gap named.
    body = epic_request(epic, "order-sign.json", "case-sepsis-il6", "cytokine-storm-order-sign")
    del body["prefetch"]["medicationStatements"]
    cards = cards_of(epic.post(SERVICE, body))
    assert [c["source"]["topic"]["code"] for c in cards] == ["ordermismatch", "dataincomplete"]
    assert "anakinra" in cards[0]["summary"].lower()
    gap = cards[1]["detail"]
    assert "medicationStatements" in gap and "CYTOKINE\\_CDS\\_FHIR\\_ALLOWLIST" in gap
    assert "vitals" not in gap  # the keys prefetch held are not gaps


def test_a_first_page_epic_sent_is_used_when_its_next_page_may_not_be_read(epic: Epic) -> None:
    body = epic_request(epic, "order-sign.json", "case-sepsis-il6", "cytokine-storm-order-sign")
    next_page = f"{EPIC_FHIR}/Observation?patient=case-sepsis-il6&page=2"
    body["prefetch"]["vitals"]["link"] = [{"relation": "next", "url": next_page}]
    cards = cards_of(epic.post(SERVICE, body))
    assert [c["source"]["topic"]["code"] for c in cards] == ["ordermismatch", "dataincomplete"]
    assert "vitals" in cards[1]["detail"] and "only part" in cards[1]["detail"]


def test_nothing_readable_from_a_refused_fhir_server_is_412_naming_it(epic: Epic) -> None:
    body = epic_request(epic, "order-sign.json", "case-sepsis-il6", "cytokine-storm-order-sign")
    del body["prefetch"]
    response = epic.post(SERVICE, body)
    assert response.status_code == 412
    issue = response.get_json()["issue"][0]
    assert issue["expression"] == ["fhirServer"]
    assert EPIC_FHIR in issue["diagnostics"]
    assert "CYTOKINE_CDS_FHIR_ALLOWLIST" in issue["diagnostics"]
    assert body["fhirAuthorization"]["access_token"] not in response.get_data(as_text=True)


UCUM = "http://unitsofmeasure.org"
ORDERED_DOSE = "https://open.epic.com/FHIR/StructureDefinition/extension/ordered-dose"


def epic_order(
    epic: Epic, patient: str, name: str, rxnorm: str, ordered: dict[str, Any] | None
) -> Any:
    """Epic's order-sign: a sibling Medication, the dose as the volume given (15.6 mL), and the
    ordered dose in mg in Epic's dosage extension."""
    body = epic_request(epic, "order-sign.json", patient, "cytokine-storm-order-sign")
    order, medication = (entry["resource"] for entry in body["context"]["draftOrders"]["entry"])
    medication["code"] = {
        "coding": [{"system": "urn:oid:2.16.840.1.113883.6.88", "code": rxnorm}],
        "text": name,
    }
    order["medicationReference"]["display"] = name
    dosage = order["dosageInstruction"][0]
    dosage["doseAndRate"][0]["doseQuantity"] = {
        "value": 15.6, "unit": "mL", "system": UCUM, "code": "mL"
    }  # fmt: skip
    dosage["timing"] = {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}
    dosage["extension"] = [{"url": ORDERED_DOSE, "valueQuantity": ordered}] if ordered else []
    return epic.post(SERVICE, body)


def epic_methylprednisolone(epic: Epic, patient: str, ordered: dict[str, Any] | None) -> Any:
    """1,000 mg methylprednisolone, as Epic orders it."""
    name = "METHYLPREDNISOLONE SODIUM SUCC 1000 MG IJ SOLR"
    return epic_order(epic, patient, name, "6902", ordered)


def test_an_epic_dose_in_ml_is_read_from_its_ordered_dose_extension(epic: Epic) -> None:
    ordered = {"value": 1000, "unit": "mg", "system": UCUM, "code": "mg"}
    cards = cards_of(epic_methylprednisolone(epic, "css-immunoparalysis", ordered))
    shown = [(c["source"]["topic"]["code"], c["indicator"]) for c in cards]
    assert shown == [("ordercaution", "warning")], cards
    assert "high dose, immunoparalysis criteria met" in cards[0]["summary"]
    # In grams it is the same dose.
    in_grams = {"value": 1, "unit": "g", "system": UCUM, "code": "g"}
    cards = cards_of(epic_methylprednisolone(epic, "css-immunoparalysis", in_grams))
    assert [c["source"]["topic"]["code"] for c in cards] == ["ordercaution"]
    assert "high dose, immunoparalysis criteria met" in cards[0]["summary"]


def test_an_epic_dose_readable_from_neither_keeps_the_dose_unknown_card(epic: Epic) -> None:
    """Tocilizumab's 800 mg maximum cannot be checked on 15.6 mL: said, never passed."""
    for ordered in (None, {"value": 2, "unit": "vial", "code": "{vial}"}):
        name = "TOCILIZUMAB IV SOLN"
        cards = cards_of(epic_order(epic, "case-cart-day3", name, "612865", ordered))
        assert [c["source"]["topic"]["code"] for c in cards] == ["ordercaution"], cards
        assert "the dose could not be read" in cards[0]["summary"]
        assert "mL" in cards[0]["detail"]


def test_an_epic_tocilizumab_dose_above_the_label_maximum_is_a_caution(epic: Epic) -> None:
    name = "TOCILIZUMAB 400 MG/20ML IV SOLN"
    cards = cards_of(
        epic_order(epic, "case-cart-day3", name, "612865", {"value": 1000, "code": "mg"})
    )
    assert [(c["source"]["topic"]["code"], c["indicator"]) for c in cards] == [
        ("ordercaution", "warning")
    ], cards
    assert "1,000 mg ordered, above the label maximum of 800 mg" in cards[0]["detail"]
    # At the limit (0.8 g) there is nothing to say.
    at_limit = {"value": 0.8, "unit": "g", "code": "g"}
    assert cards_of(epic_order(epic, "case-cart-day3", name, "612865", at_limit)) == []


def test_an_epic_dose_per_kg_in_its_ordered_dose_extension_is_judged(epic: Epic) -> None:
    """The dose ordered in mg/kg (doseQuantity the volume): with no body weight charted it is
    judged against the CRS bands alone, every one per kg (12 mg/kg under 30 kg, else 8)."""
    name = "TOCILIZUMAB 400 MG/20ML IV SOLN"
    above = {"value": 14, "unit": "mg/kg", "system": UCUM, "code": "mg/kg"}
    cards = cards_of(epic_order(epic, "case-cart-day3", name, "612865", above))
    assert [c["source"]["topic"]["code"] for c in cards] == ["ordercaution"], cards
    assert cards[0]["summary"] == (
        "tocilizumab: 14 mg/kg ordered, above the dose by weight labelled for CRS"
    )
    assert "No current body weight was found" in cards[0]["detail"]
    # 12 mg/kg is the label's dose under 30 kg: without a weight it cannot be judged, and an
    # info card says the dose limits went unchecked.
    within = {"value": 12, "unit": "mg/kg", "system": UCUM, "code": "mg/kg"}
    cards = cards_of(epic_order(epic, "case-cart-day3", name, "612865", within))
    assert [(c["source"]["topic"]["code"], c["indicator"]) for c in cards] == [
        ("ordercaution", "info")
    ], cards
    assert cards[0]["summary"] == (
        "tocilizumab: 12 mg/kg ordered, no current body weight found; dose limits not checked"
    )
    assert "charted in the last 7 days was found" in cards[0]["detail"]


def test_epics_no_results_outcome_is_an_empty_search_not_a_gap(epic: Epic) -> None:
    empty = load_fixture("epic/empty-search.json")
    read = read_prefetch({"cytokines": empty}, ["cytokines"])
    assert read.keys["cytokines"].state == "satisfied"
    assert read.problems == () and read.resources == []
    body = epic_request(
        epic, "order-sign.json", "css-multiplex-needed", "cytokine-storm-patient-view"
    )
    body.update(hook="patient-view", hookInstance=str(uuid.uuid4()))
    body["context"] = {"userId": body["context"]["userId"], "patientId": "css-multiplex-needed"}
    del body["fhirAuthorization"]  # nothing may be fetched: the search was answered
    body["prefetch"]["cytokines"] = empty
    cards = cards_of(epic.post(PATIENT_VIEW, body))
    assert [c["source"]["topic"]["code"] for c in cards] == ["multiplexassayneeded"]


def test_epic_feedback_reasons_are_stored_and_reported(epic: Epic) -> None:
    order_sign = epic_request(
        epic, "order-sign.json", "case-sepsis-il6", "cytokine-storm-order-sign"
    )
    (mismatch,) = cards_of(epic.post(SERVICE, order_sign))
    view = epic_request(epic, "order-sign.json", "case-cart-day3", "cytokine-storm-patient-view")
    view.update(hook="patient-view", hookInstance=str(uuid.uuid4()))
    view["context"] = {"userId": view["context"]["userId"], "patientId": "case-cart-day3"}
    (pattern,) = cards_of(epic.post(PATIENT_VIEW, view))
    (again,) = cards_of(epic.post(PATIENT_VIEW, {**view, "hookInstance": str(uuid.uuid4())}))
    text = json.dumps(load_fixture("epic/feedback.json"))
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    for name, value in {
        "{{card}}": mismatch["uuid"],
        "{{card2}}": pattern["uuid"],
        "{{card3}}": again["uuid"],
        "{{suggestion3}}": again["suggestions"][0]["uuid"],
        "{{now}}": now,
    }.items():
        text = text.replace(name, value)
    batch = json.loads(text)
    # Feedback for the order-sign card, signed with the audience typed in for the service.
    first = {"feedback": batch["feedback"][:1]}
    assert epic.post(SERVICE + "/feedback", first, aud=PUBLIC_BASE + SERVICE).status_code == 200
    rest = {"feedback": batch["feedback"][1:]}
    feedback_url = PATIENT_VIEW + "/feedback"
    response = epic.post(feedback_url, rest, aud=PUBLIC_BASE + PATIENT_VIEW)
    assert response.status_code == 200, response.get_json()
    assert epic.runtime.store is not None
    with epic.runtime.store.engine.connect() as connection:
        rows = connection.execute(
            select(
                feedback.c.override_reason_code,
                feedback.c.override_reason_display,
                feedback.c.override_comment,
            ).order_by(feedback.c.id)
        ).all()
    assert rows == [
        ("contraindication", "Contraindication to the suggested drug", "Active infection"),
        ("45", "Patient declined", "Discussed with the family"),
        (None, None, None),
    ]
    report = json.loads(
        subprocess.run(
            [str(BIN / "cytokine-cds"), "report", "--format", "json"],
            check=True, capture_output=True, text=True,
        ).stdout
    )  # fmt: skip
    by_topic = {row["topic"]: row for row in report}
    assert by_topic["ordermismatch"]["override_reasons"] == {"contraindication": 1}
    assert by_topic["crs"]["override_reasons"] == {"epic:45": 1}
    assert by_topic["crs"]["accepted"] == 1
    triggers = json.loads(
        subprocess.run(
            [str(BIN / "cytokine-cds"), "report", "--by", "trigger", "--format", "json"],
            check=True, capture_output=True, text=True,
        ).stdout
    )  # fmt: skip
    assert triggers == [
        {
            "trigger": "action 23, criteria 1234567",
            "shown": 3,
            "accepted": 1,
            "overridden": 2,
            "override_reasons": {"contraindication": 1, "epic:45": 1},
            "acceptance_rate": 0.333,
        }
    ]
