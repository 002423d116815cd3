"""The published-case set (tests/clinical/cases.py) through the real hook endpoints.

Each case is posted as an EHR would post it (prefetch composed from the chart, dates moved to
now; order-sign with its draft order), and the cards are checked against the case's source: the
right drug drafted, the wrong ones never, and no mismatch warning on a standard-of-care order.
`python -m tests.clinical.score` prints the score.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from cds_service import create_app
from cds_service.api.runtime import current_runtime
from cds_service.demo import hook_request
from cds_service.settings import Settings
from tests.cards.test_client_limits import PUBLIC_BASE, all_problems
from tests.clinical.cases import CASES, Case
from tests.clinical.make_fixtures import fixture_files, text
from tests.conftest import SERVICE_FOR_HOOK

RXNORM_NAMES = {"612865": "tocilizumab", "3264": "dexamethasone", "72435": "anakinra",
                "2104604": "emapalumab", "2047232": "baricitinib", "6902": "methylprednisolone",
                "5492": "hydrocortisone", "4179": "etoposide"}  # fmt: skip


def run_case(client: FlaskClient, case: Case) -> list[dict[str, Any]]:
    with client.application.app_context():
        service = current_runtime().services[SERVICE_FOR_HOOK[case.hook]]
    body = hook_request(
        service, case.chart().bundle(), draft_orders=case.orders, now=datetime.now(UTC)
    )
    response = client.post(f"/cds-services/{service.id}", json=body)
    assert response.status_code == 200, response.get_json()
    return list(response.get_json()["cards"])


def drafted(cards: list[dict[str, Any]]) -> set[str]:
    """Drugs of the MedicationRequests the cards' suggestions create."""
    names = set()
    for card in cards:
        for suggestion in card.get("suggestions") or []:
            for action in suggestion["actions"]:
                resource = action.get("resource") or {}
                if resource.get("resourceType") == "MedicationRequest":
                    for coding in resource["medicationCodeableConcept"]["coding"]:
                        names.add(RXNORM_NAMES.get(coding["code"], coding["code"]))
    return names


def problems(case: Case, cards: list[dict[str, Any]]) -> list[str]:
    """What the cards get wrong for this case (empty: the case passes)."""
    found: list[str] = []
    drugs = drafted(cards)
    text = " ".join(c["summary"] + " " + (c.get("detail") or "") for c in cards).lower()
    topics = [c["source"]["topic"]["code"] for c in cards]
    for drug in case.suggest:
        if drug not in drugs:
            found.append(f"{drug} not drafted")
    for drug in case.named:
        if drug not in text:
            found.append(f"{drug} not named")
    for drug in case.never:
        if drug in drugs:
            found.append(f"{drug} drafted")
    if case.mismatch is True and "ordermismatch" not in topics:
        found.append("no mismatch warning")
    if case.mismatch is False and "ordermismatch" in topics:
        found.append("mismatch warning on a standard-of-care order")
    if case.panel is True and "multiplexassayneeded" not in topics:
        found.append("no multiplex panel")
    if case.no_cards and cards:
        found.append(f"cards where none fit: {topics}")
    for phrase in case.text:
        if phrase.lower() not in text:
            found.append(f"cards do not say {phrase!r}")
    for phrase in case.absent:
        if phrase.lower() in text:
            found.append(f"cards say {phrase!r}")
    return found


@pytest.fixture(scope="module")
def case_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    """One app for the whole set: the cases only read."""
    data = tmp_path_factory.mktemp("cases")
    # A registered public URL, as a production deployment has: the links are checked too.
    settings = Settings(auth="off", public_base_url=PUBLIC_BASE, data_dir=data)
    with create_app(settings).test_client() as client:
        yield client


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_published_case(case_client: FlaskClient, case: Case) -> None:
    cards = run_case(case_client, case)
    assert problems(case, cards) == [], [
        (c["summary"], c["source"]["topic"]["code"]) for c in cards
    ]
    # Every published answer is one each documented client accepts.
    assert all_problems(cards) == []


def test_fixture_files_are_the_case_charts() -> None:
    """fixtures/patients/case-*.json are generated from the cases: regenerate after a change
    (`python -m tests.clinical.make_fixtures`)."""
    for path, bundle in fixture_files().items():
        assert path.read_text(encoding="utf-8") == text(bundle), path.name


@pytest.mark.parametrize("case", CASES[:15], ids=[case.id for case in CASES[:15]])
def test_a_chart_evaluated_days_later_drafts_nothing(case_client: FlaskClient, case: Case) -> None:
    """Ten days on, every vital sign and lab is past its freshness window: no state can be
    judged, so nothing is drafted, and every card still meets the spec (summary < 140)."""
    with case_client.application.app_context():
        service = current_runtime().services[SERVICE_FOR_HOOK[case.hook]]
    later = datetime.now(UTC) - timedelta(days=10)  # the chart's dates moved to 10 days ago
    body = hook_request(service, case.chart().bundle(), draft_orders=case.orders, now=later)
    response = case_client.post(f"/cds-services/{service.id}", json=body)
    assert response.status_code == 200, response.get_json()
    cards = response.get_json()["cards"]
    assert drafted(cards) == set()
    assert all(len(card["summary"]) < 140 for card in cards)
