"""Orders being selected or signed, checked against the patient's pattern."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fhir.resources.R4B.medicationrequest import MedicationRequest
from flask.testing import FlaskClient

from tests.conftest import hook_body, hook_call, load_fixture

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def draft_id(orders: str) -> str:
    return str(load_fixture(f"orders/{orders}.json")["entry"][0]["resource"]["id"])


def cards_of(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.get_json()
    return list(response.get_json()["cards"])


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
@pytest.mark.parametrize(
    ("patient", "orders", "alternative"),
    [
        ("case-sepsis-il6", "tocilizumab", None),  # no IL-6 blockade in bacterial sepsis
        ("case-sepsis-il6", "anakinra", None),  # label: not during an active infection (no MALS)
        ("case-sjia-mas", "emapalumab", "6902"),  # Still's: glucocorticoids first
        ("case-ebv-hlh", "emapalumab", None),  # labelled for primary HLH
        # Dexamethasone ordered as COVID-19 therapy (reasonCode U07.1) without oxygen need.
        ("case-covid-air", "dexamethasone-6mg-covid", None),
    ],
)
def test_an_avoid_rule_of_the_setting_warns_with_its_source(
    client: FlaskClient, hook: str, patient: str, orders: str, alternative: str | None
) -> None:
    (card,) = cards_of(hook_call(client, hook, patient, orders))
    assert card["source"]["topic"]["code"] == "ordermismatch"
    assert card["indicator"] == "warning"
    assert len(card["summary"]) < 140
    assert card["detail"].startswith("**Setting applied:")
    assert card["source"]["url"]  # the rule's source
    assert card["selectionBehavior"] == "any"
    assert {r["code"] for r in card["overrideReasons"]} >= {
        "clinical-judgement",
        "already-on-therapy",
        "contraindication",
    }
    assert all(r["display"] for r in card["overrideReasons"])
    # One action per suggestion: "remove the draft", then (if any) "order the alternative".
    removal, *alternatives = card["suggestions"]
    assert all(len(s["actions"]) == 1 for s in card["suggestions"])
    (delete,) = removal["actions"]
    assert delete == {
        "type": "delete",
        "description": delete["description"],
        "resourceId": f"MedicationRequest/{draft_id(orders)}",
    }
    assert delete["description"].startswith("Delete the draft order for")
    if alternative is None:
        assert alternatives == []
        return
    (order,) = alternatives
    (create,) = order["actions"]
    assert create["type"] == "create" and create["description"]
    MedicationRequest.model_validate(create["resource"])
    assert create["resource"]["medicationCodeableConcept"]["coding"][0] == {
        "system": RXNORM,
        "code": alternative,
        "display": create["resource"]["medicationCodeableConcept"]["text"],
    }
    assert create["resource"]["subject"] == {"reference": f"Patient/{patient}"}


@pytest.mark.parametrize(
    ("patient", "orders"),
    [
        # Standard of care in the recorded setting: never a warning.
        ("case-cart-day3", "tocilizumab"),  # CAR-T CRS grade 2, ferritin 6,000, IFN-γ 500
        ("case-cart-day3", "dexamethasone-6mg"),
        ("case-covid-hladr", "tocilizumab"),  # hypoxic COVID-19, CRP 150, low HLA-DR
        ("case-covid-recovery", "dexamethasone-6mg"),
        ("case-sjia-mas", "methylprednisolone-pulse"),
        # No setting recorded: no mismatch warning against any order.
        ("css-ifng-hlh", "anakinra"),
        ("css-ifng-hlh", "tocilizumab"),
        ("css-il6-covid", "emapalumab"),  # a label caution (latent TB) at most
        ("css-il6-covid", "methylprednisolone-pulse"),
        ("css-mixed", "tocilizumab"),
        ("css-no-inflammation", "anakinra"),
    ],
)
def test_fitting_order_gets_no_warning(client: FlaskClient, patient: str, orders: str) -> None:
    cards = cards_of(hook_call(client, "order-sign", patient, orders))
    assert [c["source"]["topic"]["code"] for c in cards if c["indicator"] == "warning"] in (
        [],
        ["ordercaution"],
    )
    assert "ordermismatch" not in [c["source"]["topic"]["code"] for c in cards]


def test_cytokine_directed_order_without_cytokine_data_gets_the_multiplex_card(
    client: FlaskClient,
) -> None:
    (card,) = cards_of(hook_call(client, "order-sign", "css-multiplex-needed", "anakinra"))
    assert card["source"]["topic"]["code"] == "multiplexassayneeded"
    assert "anakinra" in card["detail"]
    resource = card["suggestions"][0]["actions"][0]["resource"]
    assert resource["resourceType"] == "ServiceRequest"


def _with_lab_order(body: dict[str, Any]) -> dict[str, Any]:
    """The draft orders with a lab order beside the tocilizumab order."""
    body["context"]["draftOrders"]["entry"].append(
        {
            "resource": {
                "resourceType": "ServiceRequest",
                "id": "draft-ferritin",
                "status": "draft",
                "intent": "order",
                "code": {"text": "Ferritin"},
                "subject": {"reference": f"Patient/{body['context']['patientId']}"},
            }
        }
    )
    return body


def test_order_select_judges_only_the_selected_orders(client: FlaskClient) -> None:
    path, body = hook_body(client, "order-select", "case-sepsis-il6", "tocilizumab")
    body = _with_lab_order(body)
    body["context"]["selections"] = ["ServiceRequest/draft-ferritin"]
    assert cards_of(client.post(path, json=body)) == []  # the lab order: nothing to check
    body["context"]["selections"] = ["ServiceRequest/draft-ferritin", "draft-tocilizumab"]
    (card,) = cards_of(client.post(path, json=body))
    assert card["source"]["topic"]["code"] == "ordermismatch"


def test_order_select_without_selections_judges_every_draft(client: FlaskClient) -> None:
    """`selections` is required by the hook; without it every draft order is judged, as at
    order-sign, rather than none (an empty answer would read as "the order fits")."""
    path, body = hook_body(client, "order-select", "case-sepsis-il6", "tocilizumab")
    del body["context"]["selections"]
    (card,) = cards_of(client.post(path, json=body))
    assert card["source"]["topic"]["code"] == "ordermismatch"
    body["context"]["selections"] = []  # nothing selected yet
    assert cards_of(client.post(path, json=body)) == []


def test_a_selection_not_among_the_draft_orders_is_said_not_checked(client: FlaskClient) -> None:
    """A selection naming no draft order (an id the EHR mapped wrongly) was not checked: the
    answer says so instead of being empty."""
    path, body = hook_body(client, "order-select", "case-sepsis-il6", "tocilizumab")
    body["context"]["selections"] = ["MedicationRequest/nope"]
    (card,) = cards_of(client.post(path, json=body))
    assert card["source"]["topic"]["code"] == "dataincomplete"
    assert "named by context.selections but not among the draft orders sent" in card["detail"]
    assert "1 of 1" in card["detail"]
    body["context"]["selections"] = ["MedicationRequest/nope", "draft-tocilizumab"]
    topics = [c["source"]["topic"]["code"] for c in cards_of(client.post(path, json=body))]
    assert topics == ["ordermismatch", "dataincomplete"]


def test_order_without_cytokine_directed_drug_gets_no_card(client: FlaskClient) -> None:
    from datetime import UTC, datetime

    from cds_service.api.runtime import current_runtime
    from cds_service.demo import hook_request

    with client.application.app_context():
        service = current_runtime().services["cytokine-storm-order-sign"]
    orders = load_fixture("orders/tocilizumab.json")
    concept = orders["entry"][0]["resource"]["medicationCodeableConcept"]
    concept["coding"][0].update(code="161", display="acetaminophen")
    concept["text"] = "acetaminophen"
    body = hook_request(
        service, load_fixture("patients/css-il1-mals.json"), draft_orders=orders,
        now=datetime.now(UTC),
    )  # fmt: skip
    assert cards_of(client.post(f"/cds-services/{service.id}", json=body)) == []


def test_sandbox_shaped_draft_orders_are_read(client: FlaskClient) -> None:
    """The sandbox's draftOrders fail strict R4 (no Bundle.type, category as one object)."""
    orders = load_fixture("orders/tocilizumab.json")
    assert "type" not in orders
    assert isinstance(orders["entry"][0]["resource"]["category"], dict)
    (card,) = cards_of(hook_call(client, "order-sign", "case-sepsis-il6", "tocilizumab"))
    assert card["source"]["topic"]["code"] == "ordermismatch"


def test_a_high_steroid_dose_in_immunoparalysis_is_a_caution_in_prednisone_equivalents(
    client: FlaskClient,
) -> None:
    """No trial tested corticosteroids in sepsis immunoparalysis, and some indications call for
    a high dose (bacterial meningitis): the card cautions and never suggests deleting."""
    response = hook_call(client, "order-sign", "case-sepsis-ip", "methylprednisolone-pulse")
    (card,) = cards_of(response)
    assert (card["source"]["topic"]["code"], card["indicator"]) == ("ordercaution", "warning")
    assert "suggestions" not in card
    detail = " ".join(card["detail"].split())
    # 1,000 mg methylprednisolone a day x 1.25 (prednisone-equivalence, Buttgereit 2002)
    assert "(about 1,250 mg prednisone-equivalent per day) meets a caution" in detail
    assert "own indication" in detail


def test_a_steroid_of_unstated_indication_without_oxygen_gets_a_hedged_caution(
    client: FlaskClient,
) -> None:
    """RECOVERY is about dexamethasone as COVID-19 therapy: an order that names no indication
    (it may be antenatal or long-term) is never told to be removed."""
    (card,) = cards_of(hook_call(client, "order-sign", "case-covid-air", "dexamethasone-6mg"))
    assert card["source"]["topic"]["code"] == "ordercaution"
    assert "suggestions" not in card  # no delete
    assert len(card["summary"]) < 140 and "if" in card["summary"].lower()
    detail = " ".join(card["detail"].split())
    assert "no indication" in detail and "RECOVERY" in detail
    assert "abruptly" in detail  # long-term steroids must not simply be stopped


def test_a_label_caution_names_the_finding(client: FlaskClient) -> None:
    """Tocilizumab ordered in COVID-19 beside a bacterial pneumonia: a caution, not a mismatch."""
    (card,) = cards_of(hook_call(client, "order-sign", "case-covid-pneumonia", "tocilizumab"))
    assert card["source"]["topic"]["code"] == "ordercaution"
    assert "another active infection" in card["detail"] and "suggestions" not in card


@pytest.mark.parametrize(("second_id", "warnings"), [("draft-tocilizumab", 1), ("another", 2)])
def test_an_order_sent_twice_under_one_id_gets_one_card(
    client: FlaskClient, second_id: str, warnings: int
) -> None:
    orders = load_fixture("orders/tocilizumab.json")
    again = copy.deepcopy(orders["entry"][0])
    again["resource"]["id"] = second_id
    orders["entry"].append(again)
    cards = cards_of(hook_call(client, "order-sign", "case-sepsis-il6", orders))
    topics = [c["source"]["topic"]["code"] for c in cards]
    assert topics.count("ordermismatch") == warnings


@pytest.mark.parametrize("brand", ["TYENNE 20 MG/ML IV SOLN", "Tofidence 20 mg/mL injection"])
def test_a_tocilizumab_biosimilar_ordered_by_its_brand_alone_is_checked(
    client: FlaskClient, brand: str
) -> None:
    """The chart reads these brands as tocilizumab given; an order by the same name must meet
    the same checks, not pass unchecked."""
    orders = load_fixture("orders/tocilizumab.json")
    orders["entry"][0]["resource"]["medicationCodeableConcept"] = {"text": brand}
    (card,) = cards_of(hook_call(client, "order-sign", "case-sepsis-il6", orders))
    assert card["source"]["topic"]["code"] == "ordermismatch"
    assert "no IL-6 blockade in bacterial sepsis" in card["summary"]
