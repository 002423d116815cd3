"""One fixture patient per pattern, through POST /cds-services/{id} with prefetch."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.servicerequest import ServiceRequest
from flask.testing import FlaskClient

from tests.conftest import hook_call

TOPIC_SYSTEM = "https://cytokine-cds.github.io/fhir/CodeSystem/css-subtype"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def only_card(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.get_json()
    cards = response.get_json()["cards"]
    assert len(cards) == 1, [c["summary"] for c in cards]
    return cards[0]


def created(card: dict[str, Any], index: int = 0) -> dict[str, Any]:
    suggestion = card["suggestions"][index]
    (action,) = suggestion["actions"]
    assert action["type"] == "create" and action["description"]
    assert card["selectionBehavior"] == "any"
    return action["resource"]


def drugs_of(card: dict[str, Any]) -> list[str]:
    return [
        s["actions"][0]["resource"]["medicationCodeableConcept"]["text"]
        for s in card.get("suggestions") or []
    ]


@pytest.mark.parametrize(
    ("patient", "topic", "summary", "drugs"),
    [
        ("case-cart-day3", "crs",
         "CAR-T/bispecific, day 3, ASTCT CRS grade 2 criteria met: consider tocilizumab",
         ["tocilizumab"]),
        # Every drug drafted is named in the summary: a pop-up shows the summary alone.
        ("case-covid-recovery", "covid19oxygen",
         "COVID-19, needing oxygen: consider dexamethasone and tocilizumab",
         ["dexamethasone", "tocilizumab"]),
        ("case-sjia-mas", "mas",
         "Still's/sJIA, MAS-2016 criteria met: consider methylprednisolone and anakinra",
         ["methylprednisolone", "anakinra"]),
    ],
)  # fmt: skip
def test_the_setting_card_names_the_setting_and_the_one_action(
    client: FlaskClient, patient: str, topic: str, summary: str, drugs: list[str]
) -> None:
    card = only_card(hook_call(client, "patient-view", patient))
    assert card["source"]["topic"]["system"] == TOPIC_SYSTEM
    assert card["source"]["topic"]["code"] == topic
    assert card["summary"] == summary
    assert drugs_of(card) == drugs
    first = created(card)
    MedicationRequest.model_validate(first)  # strict R4: raises when invalid
    assert first["status"] == "draft" and first["intent"] == "proposal"
    assert first["subject"] == {"reference": f"Patient/{patient}"}
    assert first["requester"] == {"reference": "Practitioner/example"}
    assert card["suggestions"][0]["isRecommended"] is True
    detail = card["detail"]
    # Leads with the setting and the state, then the decisive rows only; cited; hedged.
    assert detail.startswith("**Setting applied:")
    # The values that decided: the score's items that counted, or the markers its rules read.
    assert "(counted: " in detail or "| Marker | Result | Measured | Threshold | Judged |" in detail
    assert "not past threshold" not in detail  # only the rows that decided
    assert "https://doi.org/" in detail and "not a diagnosis" in detail
    assert all(reason["display"] for reason in card["overrideReasons"])


def test_the_car_t_card_does_not_cite_the_sepsis_rules(client: FlaskClient) -> None:
    card = only_card(hook_call(client, "patient-view", "case-cart-day3"))
    assert drugs_of(card) == ["tocilizumab"] and "MALS" not in card["detail"]
    assert "PROVIDE" not in card["detail"] and "Kyriazopoulou" not in card["detail"]
    assert "ASTCT" in card["detail"]


@pytest.mark.parametrize(
    ("patient", "topic"),
    [("css-ifng-hlh", "ifngdriven"), ("css-il6-covid", "il6driven")],
)
def test_without_a_setting_the_pattern_is_described_never_treated(
    client: FlaskClient, patient: str, topic: str
) -> None:
    card = only_card(hook_call(client, "patient-view", patient))
    assert card["source"]["topic"]["code"] == topic
    assert "depends on the clinical setting" in card["summary"]
    assert "suggestions" not in card
    assert "No targeted drug is suggested" in card["detail"]


def test_iec_hs_features_are_advised_with_the_values_that_fired(client: FlaskClient) -> None:
    """Anakinra in IEC-HS is off-label and its gate unverified: advised, hedged, not drafted;
    the card shows the ferritin, fibrinogen and ALT rows with their thresholds."""
    card = only_card(hook_call(client, "patient-view", "case-iechs"))
    assert card["source"]["topic"]["code"] == "iechs"
    assert card["summary"] == (
        "CAR-T/bispecific, day 14, possible IEC-HS: review for IEC-HS with the cell therapy "
        "team; anakinra is not drafted"
    )
    assert drugs_of(card) == []
    detail = card["detail"]
    for row in ("| Ferritin (IEC-HS range) | 15,000 ng/mL", "| ALT (transaminitis) | 260 U/L",
                "| Fibrinogen (low) | 1.1 g/L"):  # fmt: skip
        assert row in detail
    assert "800 ng/mL (project convention)" in detail  # no reference range on the result
    assert "Hines" in detail and "not a diagnosis" in detail and "Verify before" in detail


def test_sepsis_immunoparalysis_warns_and_drafts_nothing(client: FlaskClient) -> None:
    card = only_card(hook_call(client, "patient-view", "case-sepsis-ip"))
    assert card["source"]["topic"]["code"] == "immunoparalysis"
    assert "avoid escalating immunosuppression" in card["summary"]
    assert "suggestions" not in card
    assert "3,000 molecules/cell" in card["detail"]


def test_mixed_pattern_shows_the_data_without_a_drug(client: FlaskClient) -> None:
    card = only_card(hook_call(client, "patient-view", "css-mixed"))
    assert card["source"]["topic"]["code"] == "mixedpattern"
    assert card["indicator"] == "info"
    assert "suggestions" not in card
    assert "IL-6" in card["detail"] and "IFN-γ" in card["detail"]


def test_axes_of_different_populations_are_listed_unranked_without_a_drug(
    client: FlaskClient,
) -> None:
    """css-mixed: IL-6 5× Herold's COVID-19 cut-off, IFN-γ 4× Xu's paediatric-HLH one, no
    setting recorded. Their ratios are not compared: each axis is listed with its threshold,
    population and source, and no axis is said to lead or to be 'none leading'."""
    for orders in ("anakinra", "emapalumab", "tocilizumab", "ruxolitinib"):
        for card in hook_call(client, "order-sign", "css-mixed", orders).get_json()["cards"]:
            resources = [a.get("resource") or {} for s in card.get("suggestions") or []
                         for a in s["actions"]]  # fmt: skip
            assert [r for r in resources if r.get("resourceType") == "MedicationRequest"] == []
            assert "lead" not in card["summary"] + card["detail"]
    card = only_card(hook_call(client, "patient-view", "css-mixed"))
    assert card["summary"] == (
        "Several cytokine axes above threshold, not ranked; the treatment depends on the "
        "clinical setting (none recorded)"
    )
    detail = card["detail"]
    assert "No clinical setting is recorded, so no cytokine axis is ranked" in detail
    assert "IL-6 &gt; 80 pg/mL (population: Adults hospitalised with COVID-19" in detail
    assert "IFN-γ &gt; 75 pg/mL (population: Febrile children with suspected HLH" in detail
    assert "Herold, J Allergy Clin Immunol 2020" in detail and "Xu, J Pediatr 2012" in detail


@pytest.mark.parametrize("patient", ["css-multiplex-needed", "css-stale-cytokines"])
def test_missing_or_stale_cytokines_suggest_the_multiplex_panel(
    client: FlaskClient, patient: str
) -> None:
    card = only_card(hook_call(client, "patient-view", patient))
    assert card["source"]["topic"]["code"] == "multiplexassayneeded"
    resource = created(card)
    ServiceRequest.model_validate(resource)
    assert resource["code"]["coding"][0]["code"] == "cytokine-panel"
    assert resource["subject"] == {"reference": f"Patient/{patient}"}
    if patient == "css-stale-cytokines":
        assert "IL-6" in card["detail"]  # the stale IL-6 group is named


def test_the_panel_code_is_a_setting() -> None:
    from cds_service import create_app
    from cds_service.settings import Settings

    app = create_app(
        Settings(
            auth="off",
            multiplex_panel_system="http://hospital.example.org/orderables",
            multiplex_panel_code="CYTO12",
            multiplex_panel_display="Cytokine panel 12-plex",
        )
    )
    card = only_card(hook_call(app.test_client(), "patient-view", "css-multiplex-needed"))
    coding = created(card)["code"]["coding"][0]
    assert coding == {
        "system": "http://hospital.example.org/orderables",
        "code": "CYTO12",
        "display": "Cytokine panel 12-plex",
    }
    assert "Cytokine panel 12-plex" in card["detail"]


@pytest.mark.parametrize("patient", ["css-no-inflammation", "css-near-threshold"])
def test_no_hyperinflammation_signal_means_no_card(client: FlaskClient, patient: str) -> None:
    response = hook_call(client, "patient-view", patient)
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}


def test_every_card_and_suggestion_uuid_is_unique(client: FlaskClient) -> None:
    seen: set[str] = set()
    for patient in ("case-cart-day3", "case-cart-day3", "css-multiplex-needed"):
        card = only_card(hook_call(client, "patient-view", patient))
        ids = [card["uuid"]] + [s["uuid"] for s in card.get("suggestions", [])]
        assert not seen & set(ids)
        seen |= set(ids)


def test_encounter_is_carried_into_the_suggested_order(client: FlaskClient) -> None:
    from datetime import UTC, datetime

    from cds_service.api.runtime import current_runtime
    from cds_service.demo import hook_request
    from tests.conftest import load_fixture

    with client.application.app_context():
        service = current_runtime().services["cytokine-storm-patient-view"]
    body = hook_request(
        service, load_fixture("patients/case-cart-day3.json"), now=datetime.now(UTC)
    )
    body["context"]["encounterId"] = "enc-42"
    card = only_card(client.post(f"/cds-services/{service.id}", json=body))
    assert created(card)["encounter"] == {"reference": "Encounter/enc-42"}


def test_a_client_that_does_not_prefetch_the_patient_is_answered_in_full(
    client: FlaskClient,
) -> None:
    """The rules read no Patient data: its absence is neither fetched nor reported."""
    from datetime import UTC, datetime

    from cds_service.api.runtime import current_runtime
    from cds_service.demo import hook_request
    from tests.conftest import load_fixture

    with client.application.app_context():
        service = current_runtime().services["cytokine-storm-patient-view"]
    body = hook_request(
        service,
        load_fixture("patients/css-il6-covid.json"),
        now=datetime.now(UTC),
        fhir_server="https://ehr.invalid/fhir",  # not allowlisted: nothing may be read from it
    )
    del body["prefetch"]["patient"]
    card = only_card(client.post(f"/cds-services/{service.id}", json=body))
    assert card["source"]["topic"]["code"] == "il6driven"
