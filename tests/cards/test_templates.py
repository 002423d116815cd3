"""Card templates are data clinicians edit: checked at start-up, escaped when rendered."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cds_service import create_app
from cds_service.cards.templates import default_cards_dir, escape_markdown, unit_text
from cds_service.hooks.response import Card
from cds_service.settings import Settings
from cds_service.yamlfile import ConfigFileError


def copy_of_cards(tmp_path: Path) -> Path:
    target = tmp_path / "cards"
    shutil.copytree(default_cards_dir(), target)
    return target


def test_values_cannot_inject_markup() -> None:
    text = escape_markdown("<img src=x onerror=alert(1)> *bold* | [link](javascript:x)")
    assert "<img" not in text and "&lt;img" in text
    assert "\\*bold\\*" in text and "\\|" in text and "\\[link\\]" in text


def test_units_are_shown_as_people_write_them() -> None:
    assert unit_text("10*9/L") == "×10⁹/L"
    assert unit_text("Cel") == "°C"
    assert unit_text("ug/mL{FEU}") == "µg/mL{FEU}"
    assert unit_text("{molecules}/{cell}") == "molecules/cell"


def test_a_hospital_can_reword_a_card(tmp_path: Path) -> None:
    from tests.conftest import hook_call

    cards = copy_of_cards(tmp_path)
    path = cards / "setting-advice.yaml"
    path.write_text(
        path.read_text().replace("consider {{ first.action }}", "think of {{ first.action }}")
    )
    app = create_app(Settings(auth="off", cards_dir=cards))
    card = hook_call(app.test_client(), "patient-view", "case-cart-day3").get_json()["cards"][0]
    assert card["summary"] == (
        "CAR-T/bispecific, day 3, ASTCT CRS grade 2 criteria met: think of tocilizumab"
    )


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        ("il6-driven.yaml", "indicator: info", "indicator: urgent", "indicator"),
        ("il6-driven.yaml", "{{ pattern.name }}", "{{ pattern.name | nosuch }}", "template"),
        ("il6-driven.yaml", "clinical-judgement,", "clinical-judgment,", "unknown override"),
        ("order-mismatch.yaml", "may not fit (", "x" * 150 + " (", "at most 139"),
        ("il1-driven.yaml", "{{ pattern.title }}", "{{ patern.title }}", "patern"),
        ("setting-advice.yaml", "consider {{ first.action }}", "{{ first.actoin }}", "actoin"),
    ],
)
def test_a_broken_template_stops_start_up(
    tmp_path: Path, file: str, old: str, new: str, message: str
) -> None:
    cards = copy_of_cards(tmp_path)
    path = cards / file
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new, 1))
    with pytest.raises(ConfigFileError) as error:
        create_app(Settings(auth="off", cards_dir=cards))
    assert message in str(error.value)


def test_a_missing_template_stops_start_up(tmp_path: Path) -> None:
    cards = copy_of_cards(tmp_path)
    (cards / "mixed-pattern.yaml").unlink()
    with pytest.raises(ConfigFileError, match=r"mixed-pattern\.yaml: cannot be read"):
        create_app(Settings(auth="off", cards_dir=cards))


def test_cards_of_one_answer_share_the_evidence_table_and_say_the_same() -> None:
    """for_orders renders the shared partials once per answer; each card must still read exactly
    as it does when rendered on its own."""
    from cds_service.cards.resources import OrderContext
    from cds_service.composition import build_runtime
    from cds_service.decision import HookContext, decide
    from cds_service.demo import FIXTURE_TIME
    from cds_service.fhir.draft_orders import medication_orders
    from cds_service.gathering import record_from_bundle
    from cds_service.rules.orders import judge_orders
    from tests.conftest import load_fixture

    knowledge = build_runtime(Settings(auth="off")).knowledge
    # Sepsis immunoparalysis: anakinra (no MALS), a 1 g steroid pulse and IL-6 blockade all meet
    # an avoid rule of the setting.
    record, patient = record_from_bundle(load_fixture("patients/case-sepsis-ip.json"))
    drugs = ("anakinra", "methylprednisolone-pulse", "tocilizumab", "anakinra")
    entries = []
    for n, drug in enumerate(drugs):
        order = load_fixture(f"orders/{drug}.json")["entry"][0]
        subject = {"reference": f"Patient/{patient}"}  # the chart's own orders
        order["resource"] = {**order["resource"], "id": f"order-{n}", "subject": subject}
        entries.append(order)
    context = HookContext(
        hook="order-sign",
        patient_id=patient,
        draft_orders={"resourceType": "Bundle", "type": "collection", "entry": entries},
    )
    decision = decide(knowledge, record, context, FIXTURE_TIME)
    mismatches = [c for c in decision.cards if _topic(c) == "ordermismatch"]
    assert len(mismatches) >= 3
    # The same cards, each rendered alone (outside an answer: nothing shared).
    ctx = OrderContext(patient_id=patient, encounter_id=None, user_id=None, now=FIXTURE_TIME)
    orders = medication_orders(context.draft_orders or {})
    findings = judge_orders(orders, decision.assessment, knowledge.rules, FIXTURE_TIME)
    alone = [
        knowledge.cards.mismatch(f, decision.assessment, ctx, ())
        for f in findings
        if f.kind == "mismatch"
    ]
    assert [c.detail for c in mismatches] == [c.detail for c in alone]
    assert [c.summary for c in mismatches] == [c.summary for c in alone]
    assert "| Marker | Result |" in (mismatches[0].detail or "")
    assert len({c.detail for c in mismatches}) >= 2  # different drugs: the texts around it differ


def _topic(card: Card) -> str | None:
    return card.source.topic.code if card.source.topic else None
