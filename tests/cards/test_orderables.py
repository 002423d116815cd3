"""A hospital's orderable code for each suggested drug, beside the RxNorm coding; RxNorm named
by its OID for a client that asks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cds_service import create_app
from cds_service.auth.trusted_clients import CardOptions
from cds_service.cards.build import sample_cards
from cds_service.composition import build_runtime
from cds_service.hooks.client_shapes import shape_cards
from cds_service.settings import Settings
from cds_service.yamlfile import ConfigFileError
from tests.conftest import hook_call

PREFERENCE_LIST = "urn:com.epic.cdshooks.action.code.system.preference-list-item"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ORDERABLES = {
    "anakinra": {"system": PREFERENCE_LIST, "code": "710001", "display": "ANAKINRA INJ"},
    "tocilizumab": {"system": PREFERENCE_LIST, "code": "710002"},
    "emapalumab": {"system": PREFERENCE_LIST, "code": "710003", "display": "EMAPALUMAB IV"},
    "methylprednisolone": {"system": PREFERENCE_LIST, "code": "710004"},
}


def codings(card: dict[str, Any]) -> list[list[dict[str, Any]]]:
    return [
        a["resource"]["medicationCodeableConcept"]["coding"]
        for s in card.get("suggestions", [])
        for a in s["actions"]
        if a["type"] == "create" and "medicationCodeableConcept" in a["resource"]
    ]


@pytest.mark.parametrize(
    ("patient", "orders", "drug", "rxnorm"),
    [
        ("case-cart-day3", None, "tocilizumab", "612865"),
        ("case-sjia-mas", "emapalumab", "methylprednisolone", "6902"),  # the alternative
    ],
)
def test_suggested_drugs_carry_the_hospitals_orderable_beside_rxnorm(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    patient: str,
    orders: str | None,
    drug: str,
    rxnorm: str,
) -> None:
    monkeypatch.setenv("CYTOKINE_CDS_DRUG_ORDERABLES", json.dumps(ORDERABLES))
    app = create_app(Settings(auth="off", data_dir=tmp_path / "d"))
    with app.test_client() as client:
        response = hook_call(client, "order-sign" if orders else "patient-view", patient, orders)
    assert response.status_code == 200, response.get_json()
    (card,) = response.get_json()["cards"]
    (coding,) = codings(card)
    expected = {"system": PREFERENCE_LIST, "code": ORDERABLES[drug]["code"]}
    expected["display"] = ORDERABLES[drug].get("display", drug)
    assert coding[0]["system"] == RXNORM and coding[0]["code"] == rxnorm
    assert coding[1] == expected


def test_without_orderables_only_rxnorm_is_sent() -> None:
    runtime = build_runtime(Settings(auth="off"))
    sent = [c for card in sample_cards(runtime.cards) for c in codings(card.to_json())]
    assert sent and all([x["system"] for x in c] == [RXNORM] for c in sent)


def test_an_orderable_for_a_drug_the_rules_do_not_know_stops_start_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "CYTOKINE_CDS_DRUG_ORDERABLES", json.dumps({"anakinrra": ORDERABLES["anakinra"]})
    )
    with pytest.raises(ConfigFileError, match="unknown drug anakinrra"):
        build_runtime(Settings(auth="off"))


def test_a_client_that_asks_gets_rxnorm_as_the_oid() -> None:
    runtime = build_runtime(Settings(auth="off"))
    cards = sample_cards(runtime.cards)
    shaped = shape_cards(cards, CardOptions(rxnorm_system="oid"))
    systems = {x["system"] for card in shaped for c in codings(card.to_json()) for x in c}
    assert systems == {"urn:oid:2.16.840.1.113883.6.88"}
