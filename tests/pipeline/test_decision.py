"""The decision function on its own: resources and a context in, cards out — no Flask app."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest

from cds_service.cards.resources import PanelCode
from cds_service.cards.templates import default_cards_dir
from cds_service.decision import HookContext, PatientRecord, decide
from cds_service.evidence import DataProblem
from cds_service.fhir.gather import DataGap
from cds_service.knowledge import Knowledge, load_knowledge
from tests.conftest import load_fixture

AT = datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def knowledge() -> Knowledge:
    panel = PanelCode("http://loinc.org", "cytokine-panel", "Cytokine multiplex panel")
    return load_knowledge(None, None, default_cards_dir(), panel)


def resources(patient: str) -> list[dict[str, Any]]:
    bundle = load_fixture(f"patients/{patient}.json")
    return [entry["resource"] for entry in bundle["entry"]]


def test_the_decision_layer_loads_no_web_framework() -> None:
    code = (
        "import sys, cds_service.decision, cds_service.gathering, cds_service.recording; "
        "print(sorted(m for m in ('flask', 'werkzeug', 'cds_service.app') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_decide_needs_no_flask_app(knowledge: Knowledge) -> None:
    record = PatientRecord(resources("css-ifng-hlh"))
    decision = decide(knowledge, record, HookContext("patient-view", "css-ifng-hlh"), AT)
    assert decision.assessment.subtype == "ifng-driven"
    (card,) = decision.cards
    assert card.source.topic is not None and "ifng" in card.source.topic.code
    assert decision.profile is None  # no link issuer: no profile link
    assert not card.links


def test_record_problems_and_gaps_reach_the_evidence_and_the_cards(knowledge: Knowledge) -> None:
    problem = DataProblem(code="operation-outcome", reason="OperationOutcome issue: warning")
    record = PatientRecord(
        resources("css-il6-covid"),
        problems=(problem,),
        gaps=(DataGap("labs", "the FHIR server answered 503", partial=False),),
    )
    decision = decide(knowledge, record, HookContext("patient-view", "css-il6-covid"), AT)
    assert problem in decision.evidence.problems
    topics = [c.source.topic.code for c in decision.cards if c.source.topic]
    assert len(topics) == 2 and any("incomplete" in t for t in topics)


def test_order_hooks_check_the_draft_orders(knowledge: Knowledge) -> None:
    orders = load_fixture("orders/anakinra.json")
    orders["entry"][0]["resource"]["subject"] = {"reference": "Patient/case-sepsis-il6"}
    for hook in ("order-sign", "order-select"):
        selections = (
            frozenset({"MedicationRequest/draft-anakinra"}) if hook == "order-select" else None
        )
        context = HookContext(hook, "case-sepsis-il6", draft_orders=orders, selections=selections)
        decision = decide(knowledge, PatientRecord(resources("case-sepsis-il6")), context, AT)
        assert [c.source.topic.code for c in decision.cards if c.source.topic] == [
            "ordermismatch"
        ], hook
    # patient-view ignores draft orders
    context = HookContext("patient-view", "css-il6-covid", draft_orders=orders)
    decision = decide(knowledge, PatientRecord(resources("css-il6-covid")), context, AT)
    assert all(
        "mismatch" not in (c.source.topic.code if c.source.topic else "") for c in decision.cards
    )


def test_the_chart_decides_the_setting_and_the_scores_the_state(knowledge: Knowledge) -> None:
    """CAR-T day 3 (procedure), fever and low-flow oxygen: ASTCT grade 2 -> tocilizumab."""
    record = PatientRecord(resources("case-cart-day3"))
    decision = decide(knowledge, record, HookContext("patient-view", "case-cart-day3"), AT)
    assessment = decision.assessment
    assert (
        assessment.setting is not None and assessment.setting.heading == "CAR-T/bispecific, day 3"
    )
    assert assessment.facts["crs_grade"] == 2
    assert [(a.drug, a.status) for a in assessment.advice] == [("tocilizumab", "suggest")]
    (card,) = decision.cards
    assert card.summary == (
        "CAR-T/bispecific, day 3, ASTCT CRS grade 2 criteria met: consider tocilizumab"
    )


def test_a_link_issuer_puts_the_profile_link_on_the_cards(knowledge: Knowledge) -> None:
    from cds_service.profile.links import ProfileLinks, issue_link

    links = ProfileLinks(b"k" * 32, 3600)
    decision = decide(
        knowledge,
        PatientRecord(resources("css-il1-mals")),
        HookContext("patient-view", "css-il1-mals"),
        AT,
        links=lambda: issue_link(links, "https://cds.example.org"),
    )
    assert decision.profile is not None
    (card,) = decision.cards
    assert card.links and card.links[0].url == decision.profile.url


def test_vitals_read_only_in_part_make_the_fever_duration_a_lower_bound(
    knowledge: Knowledge,
) -> None:
    """CAR-T day 5, grade 1, febrile at every temperature received (the last 40 hours). With
    the whole vitals search read, the fever has lasted 1.6 days: no tocilizumab for a fever of
    more than 3 days. With the vitals read only in part (a page limit), older spikes may be
    missing: that rule cannot be judged, rather than false."""
    from tests.clinical.fhir import FIXTURE_TIME, Chart

    chart = Chart("case-cart-cut-vitals").car_t_infusion(days_ago=5)
    for hours_ago, celsius in ((40, 38.4), (20, 38.6)):
        chart = chart.lab("temperature", celsius, hours_ago)
    chart = chart.vitals(temperature=38.3, spo2=97, oxygen_flow=0, systolic=118)
    record = [entry["resource"] for entry in chart.bundle()["entry"]]
    context = HookContext("patient-view", "case-cart-cut-vitals")
    whole = decide(knowledge, PatientRecord(record), context, FIXTURE_TIME)
    assert whole.assessment.facts["fever_days"] == pytest.approx(39 / 24)
    assert "tocilizumab" not in [a.drug for a in whole.assessment.advice]
    gap = DataGap("vitals", "more results than 5 pages; only those were read", partial=True)
    cut = decide(knowledge, PatientRecord(record, gaps=(gap,)), context, FIXTURE_TIME)
    assert "fever_days" in cut.assessment.lower_bounds
    assert not cut.assessment.advice
    (summary, *_) = [c.summary for c in cut.cards]
    assert summary.endswith("cannot be judged: tocilizumab; nothing drafted")
    detail = cut.cards[0].detail or ""
    assert "febrile for ≥ 1.6 days (older temperatures were not received)" in detail
    assert "tocilizumab cannot be judged (unknown: how many days the current fever" in detail
    # Gaps that cut no temperature history short: a search read by code (only components may
    # be missed), a partial gap of another search, a vitals search not read at all.
    for other in (
        DataGap("vitals", "read by code", partial=True, components_only=True),
        DataGap("labs", "more results than 5 pages", partial=True),
        DataGap("vitals", "the FHIR server answered 503"),
    ):
        kept = decide(knowledge, PatientRecord(record, gaps=(other,)), context, FIXTURE_TIME)
        assert "fever_days" not in kept.assessment.lower_bounds, other
    # A temperature received from a day before the run's start shows none after it is missing.
    older = chart.lab("temperature", 36.8, 66)
    record = [entry["resource"] for entry in older.bundle()["entry"]]
    settled = decide(knowledge, PatientRecord(record, gaps=(gap,)), context, FIXTURE_TIME)
    assert "fever_days" not in settled.assessment.lower_bounds
