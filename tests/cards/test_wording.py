"""Card wording never states a diagnosis as fact: it says which rule the recorded data meet.

The bare-diagnosis pattern: a piece of text that names a hyperinflammation state (CRS, MALS,
MAS, HLH, IEC-HS, immunoparalysis, hyperinflammation) without rule wording (criteria, score,
met, may fit, consistent with, suggest, ...). The pieces are where a state is printed as a
statement: each clause of a card summary, each bold span of a card detail, the profile page
title, and the states' labels and short names in the rules data. They are checked for every
case of the published-case set (through the hook endpoints) and every card the kit can build.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from cds_service import create_app
from cds_service.cards.build import sample_cards
from cds_service.composition import build_runtime
from cds_service.demo import FIXTURE_TIME
from cds_service.profile.page import _title as page_title
from cds_service.runtime import Runtime
from cds_service.settings import Settings
from tests.clinical.cases import CASES, Case
from tests.clinical.test_published_cases import run_case
from tests.conftest import decide_bundle

# A state's name. HLH-94 and HLH-2004 are a regimen and a criteria set, an HLH team is a team.
DIAGNOSIS = re.compile(
    r"cytokine release syndrome|\bCRS\b|macrophage activation|\bMALS\b|\bMAS\b|"
    r"ha?emophagocytic|\bHLH\b(?!-(?:94|2004))(?! team)|\bIEC-HS\b|immunoparalysis|"
    r"hyperinflammat|cytokine storm",
    re.IGNORECASE,
)
# Wording that frames it as a rule the data meet, a hedge, a lab pattern or range, or what the
# chart records.
FRAMED = re.compile(
    r"criteri|score|cut-off|\bmet\b|\bmeets?\b|may fit|possible|consistent with|suggest|"
    r"\breview|evidence|recorded|setting|cannot be judged|not a diagnosis|labelled|pattern|range",
    re.IGNORECASE,
)
# A state label names the rule itself.
RULE_NAME = re.compile(r"criteri|score|cut-off", re.IGNORECASE)


def bare(piece: str) -> bool:
    return bool(DIAGNOSIS.search(piece)) and not FRAMED.search(piece)


def summary_pieces(summary: str, headings: tuple[str, ...]) -> list[str]:
    """The clauses of a summary, without the setting heading it starts with ("HLH, day 3")."""
    names = "|".join(re.escape(h) for h in sorted(headings, key=len, reverse=True))
    text = re.sub(rf"(^|\()(?:{names})(?:, day \d+)?(?=[,:])", r"\1", summary)
    return [p.strip() for p in re.split(r"[:;]", text) if p.strip()]


def bare_pieces(card: dict[str, Any], headings: tuple[str, ...]) -> list[str]:
    pieces = summary_pieces(card["summary"], headings)
    pieces += re.findall(r"\*\*(.+?)\*\*", card.get("detail") or "", re.DOTALL)
    return [p for p in pieces if bare(p)]


@pytest.mark.parametrize(
    "text",
    [
        "Cytokine release syndrome, ASTCT grade ≥ 1",
        "Macrophage activation-like syndrome (MALS) in sepsis",
        "Sepsis immunoparalysis",
        "hyperinflammation without recent cytokine results",
        "MALS (ferritin > 4,420)",
        "ASTCT CRS grade 2",
    ],
)
def test_the_pattern_catches_a_state_printed_as_fact(text: str) -> None:
    """The wording the service printed before: each is a bare diagnosis by this pattern."""
    assert bare(text)


@pytest.mark.parametrize(
    "text",
    [
        "The recorded data meet the ASTCT CRS grading criteria (Lee 2019)",
        "results suggest hyperinflammation, no usable cytokine result in the last 48 h",
        "ASTCT CRS grade 2 criteria met",
        "Start HLH-94-type therapy (etoposide and dexamethasone) with an HLH team",
        "consistent with IL-6-predominant hyperinflammation",
    ],
)
def test_the_pattern_passes_a_state_framed_as_a_rule(text: str) -> None:
    assert not bare(text)


@pytest.fixture(scope="module")
def runtime() -> Runtime:
    return build_runtime(Settings(auth="off"))


@pytest.fixture(scope="module")
def case_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    settings = Settings(auth="off", data_dir=tmp_path_factory.mktemp("wording"))
    with create_app(settings).test_client() as client:
        yield client


def headings(runtime: Runtime) -> tuple[str, ...]:
    return tuple(setting.short for setting in runtime.knowledge.rules.settings.values())


def test_every_state_label_names_the_rule_and_every_short_name_is_framed(
    runtime: Runtime,
) -> None:
    rules = runtime.knowledge.rules
    unnamed = [
        f"{setting_id}.{state.id}: {state.label}"
        for setting_id, setting in rules.settings.items()
        for state in setting.states
        if not RULE_NAME.search(state.label)
    ]
    assert unnamed == []
    pieces = [state.short for setting in rules.settings.values() for state in setting.states]
    pieces += [criteria.label for criteria in rules.criteria_sets.values()]
    pieces += [rule.short for s in rules.settings.values() for rule in s.avoid]
    pieces.append(rules.diagnostic_bar.label)
    assert [p for p in pieces if bare(p)] == []


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_no_card_of_a_case_states_a_diagnosis_as_fact(
    case_client: FlaskClient, runtime: Runtime, case: Case
) -> None:
    cards = run_case(case_client, case)
    found = [(c["summary"], bare_pieces(c, headings(runtime))) for c in cards]
    assert [f for f in found if f[1]] == []
    decision = decide_bundle(runtime.knowledge, case.chart().bundle(), FIXTURE_TIME)
    title = page_title(decision.assessment)
    names = (*headings(runtime), "No clinical setting recorded")
    assert [p for p in summary_pieces(title, names) if bare(p)] == []


def test_no_card_the_kit_can_build_states_a_diagnosis_as_fact(runtime: Runtime) -> None:
    cards = [card.to_json() for card in sample_cards(runtime.cards)]
    found = [(c["summary"], bare_pieces(c, headings(runtime))) for c in cards]
    assert [f for f in found if f[1]] == []
