"""Every card any service can return meets the stated limits of every documented client at once.

Each client's limits are written down as a checker, from its public documentation: the CDS
Hooks 2.0 specification, Epic's CDS Hooks tutorial, Oracle Health's CDS Hooks (beta) page and
the Da Vinci CRD profile. The cards come from two places: the card kit rendered for every
pattern, every ordered drug against every pattern, the multiplex and data cards; and every
fixture patient and draft order sent through the real HTTP endpoint.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient

from cds_service import create_app
from cds_service.auth.trusted_clients import CardOptions
from cds_service.cards.build import sample_cards
from cds_service.cards.templates import plain_line
from cds_service.composition import build_runtime
from cds_service.evidence import Evidence
from cds_service.hooks.client_shapes import shape_cards
from cds_service.hooks.response import Link
from cds_service.rules.engine import assess
from cds_service.rules.orders import OrderFinding
from cds_service.runtime import Runtime
from cds_service.settings import Settings
from tests.conftest import FIXTURES, ROOT, hook_call

PUBLIC_BASE = "https://cds.hospital.example"
# What a hospital registers with Oracle Health (links on other hosts are removed).
REGISTERED_LINK_HOSTS = {"cds.hospital.example"}
INTERRUPTING: set[str] = set()  # card topics allowed to pop up (Oracle: critical); none today


def spec_problems(card: dict[str, Any]) -> list[str]:
    """CDS Hooks 2.0, "CDS Service Response" and "Use of JSON"."""
    problems = []

    def no_empty(value: Any, where: str) -> None:
        if value is None or value in ("", [], {}):
            problems.append(f"{where} is null or empty")
        elif isinstance(value, dict):
            for key, item in value.items():
                no_empty(item, f"{where}.{key}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                no_empty(item, f"{where}[{i}]")

    no_empty(card, "card")
    if not 0 < len(card.get("summary", "")) < 140:
        problems.append("summary must be 1-139 characters")
    if card.get("indicator") not in ("info", "warning", "critical"):
        problems.append("indicator not info|warning|critical")
    if not card.get("source", {}).get("label"):
        problems.append("source.label is required")
    suggestions = card.get("suggestions", [])
    if suggestions and card.get("selectionBehavior") not in ("at-most-one", "any"):
        problems.append("selectionBehavior is required with suggestions")
    recommended = sum(1 for s in suggestions if s.get("isRecommended"))
    if card.get("selectionBehavior") == "at-most-one" and recommended > 1:
        problems.append("at-most-one allows one recommended suggestion")
    for s in suggestions:
        if not s.get("label"):
            problems.append("suggestion.label is required")
        for a in s.get("actions", []):
            if a.get("type") not in ("create", "update", "delete") or not a.get("description"):
                problems.append("action needs a type and a description")
            if a.get("type") == "delete" and not a.get("resourceId"):
                problems.append("a delete names its resourceId")
            if a.get("type") in ("create", "update") and not a.get("resource"):
                problems.append("a create/update carries its resource")
    for reason in card.get("overrideReasons", []):
        if not reason.get("display"):
            problems.append("override reasons need a display")
    for link in card.get("links", []):
        if link.get("type") not in ("absolute", "smart") or not link.get("label"):
            problems.append("link needs a label and type absolute|smart")
        if "appContext" in link and link["type"] != "smart":
            problems.append("appContext only on smart links")
    return problems


# What Markdown or HTML escaping leaves in text that a client shows as it is.
_ESCAPED = re.compile(r"&(lt|gt|amp|quot|#\d+);|\\[\\`*_\[\]|~#<>&]")


def plain_text_problems(card: dict[str, Any]) -> list[str]:
    """summary, suggestion label and action description are plain strings (C-2, SG-1, AC-2):
    Epic and Oracle Health show them as text, so no entity or Markdown escape, one line."""
    fields = [("summary", card.get("summary", ""))]
    for s in card.get("suggestions", []):
        fields.append(("suggestion.label", s.get("label", "")))
        fields += [("action.description", a.get("description", "")) for a in s["actions"]]
    problems = []
    for name, text in fields:
        if _ESCAPED.search(text):
            problems.append(f"{name} holds an escape: {text!r}")
        if text != " ".join(text.split()) or not text.isprintable():
            problems.append(f"{name} is not one clean line: {text!r}")
    return problems


_EPIC_TOPIC = re.compile(r"^[A-Za-z0-9]{1,100}$")


def epic_problems(card: dict[str, Any]) -> list[str]:
    """Epic on FHIR, CDS Hooks tutorial: what Epic supports in a card."""
    problems = []
    suggestions = card.get("suggestions", [])
    if suggestions and card.get("selectionBehavior") != "any":
        problems.append("Epic supports only selectionBehavior 'any'")
    for s in suggestions:
        if len(s.get("actions", [])) != 1:
            problems.append("Epic applies exactly one action per suggestion")
        if not s.get("uuid"):
            problems.append("a suggestion needs a uuid for feedback")
        for a in s.get("actions", []):
            if not a.get("description"):
                problems.append("action.description is the text Epic shows")
    if not card.get("uuid"):
        problems.append("a card needs a uuid for feedback")
    topic = card.get("source", {}).get("topic", {}).get("code", "")
    if not _EPIC_TOPIC.match(topic):
        problems.append(f"topic code {topic!r}: letters and digits only, at most 100")
    for link in card.get("links", []):
        if link.get("type") == "smart":
            problems.append("smart links need registration at each hospital: send absolute ones")
    return problems


def oracle_problems(card: dict[str, Any]) -> list[str]:
    """Oracle Health (Cerner) CDS Hooks: critical pops up, links must be registered, no
    appContext."""
    problems = []
    topic = card.get("source", {}).get("topic", {}).get("code")
    if card.get("indicator") == "critical" and topic not in INTERRUPTING:
        problems.append("critical shows as a pop-up: only for what truly interrupts")
    for link in card.get("links", []):
        if urlsplit(link["url"]).hostname not in REGISTERED_LINK_HOSTS:
            problems.append(f"link host of {link['url']} is not the registered one")
        if "appContext" in link:
            problems.append("Oracle Health does not support appContext")
    return problems


def all_problems(cards: list[dict[str, Any]]) -> list[str]:
    problems = []
    uuids = [c["uuid"] for c in cards] + [
        s["uuid"] for c in cards for s in c.get("suggestions", [])
    ]
    if len(set(uuids)) != len(uuids):
        problems.append("card and suggestion uuids must be unique")
    for card in cards:
        for check in (spec_problems, plain_text_problems, epic_problems, oracle_problems):
            problems += [f"{card['source']['topic']['code']}: {p}" for p in check(card)]
    return problems


def crd_alternate_problems(card: dict[str, Any]) -> list[str]:
    """Da Vinci CRD "propose alternate request": one suggestion holding delete + create."""
    kinds = [[a["type"] for a in s["actions"]] for s in card.get("suggestions", [])]
    if ["delete"] in kinds or (["create"] in kinds and any(len(k) > 1 for k in kinds)):
        return [f"alternate request split across suggestions: {kinds}"]
    return []


@pytest.fixture(scope="module")
def runtime() -> Runtime:
    return build_runtime(Settings(auth="off"))


LINK = Link(label="Cytokine profile", url=f"{PUBLIC_BASE}/profile/abc", type="absolute")


def test_every_card_the_kit_can_build_meets_every_clients_limits(runtime: Runtime) -> None:
    cards = sample_cards(runtime.cards, [LINK])
    topics = {c.source.topic.code for c in cards if c.source.topic}
    # Every card type is among them: all patterns, order, multiplex and data cards; the setting
    # card carries the topic of the state it found (rules.yaml settings.*.states[].topic), or
    # its own when no state could be judged.
    states = {s.topic.code for spec in runtime.rules.settings.values() for s in spec.states}
    templates = {t.spec.topic.code for t in runtime.cards.kit.templates.values()}
    assert topics == templates | states
    assert len(cards) > 3 * len(runtime.rules.drugs)
    assert all_problems([c.to_json() for c in cards]) == []


def test_the_checkers_catch_what_each_client_refuses(runtime: Runtime) -> None:
    """The limits are real: yesterday's card shape fails each checker it broke."""
    (mismatch,) = [
        c.to_json()
        for c in sample_cards(runtime.cards)
        if c.source.topic
        and c.source.topic.code == "ordermismatch"
        and len(c.suggestions or ()) == 2
    ][:1]
    old = dict(mismatch, selectionBehavior="at-most-one")
    old["source"] = dict(old["source"], topic=dict(old["source"]["topic"], code="order-mismatch"))
    old["suggestions"] = [
        {"label": "Replace", "actions": [a for s in mismatch["suggestions"] for a in s["actions"]]}
    ]
    problems = epic_problems(old)
    assert "Epic supports only selectionBehavior 'any'" in problems
    assert "Epic applies exactly one action per suggestion" in problems
    assert "a suggestion needs a uuid for feedback" in problems
    assert any("letters and digits" in p for p in problems)
    assert oracle_problems(dict(mismatch, indicator="critical"))
    linked = dict(
        mismatch, links=[{"label": "x", "url": "https://other.invalid/", "type": "absolute"}]
    )
    assert oracle_problems(linked)
    assert spec_problems(dict(mismatch, summary="x" * 140))
    assert spec_problems(dict(mismatch, detail=""))


def test_the_one_suggestion_alternate_is_chosen_per_client(runtime: Runtime) -> None:
    cards = sample_cards(runtime.cards)
    combined = shape_cards(cards, CardOptions(alternative_order="one-suggestion"))
    pairs = [
        (before.to_json(), after.to_json())
        for before, after in zip(cards, combined, strict=True)
        if len(before.suggestions or ()) == 2
    ]
    assert pairs  # mismatch cards with an alternative exist
    for before, after in pairs:
        (suggestion,) = after["suggestions"]
        assert [a["type"] for a in suggestion["actions"]] == ["delete", "create"]
        assert suggestion["uuid"] == before["suggestions"][1]["uuid"]
        assert crd_alternate_problems(after) == []
        assert crd_alternate_problems(before) != []
        assert spec_problems(after) == []
    # Every other card is unchanged, and the default is the shape every client accepts.
    unchanged = [a == b for a, b in zip(cards, combined, strict=True)]
    assert unchanged.count(False) == len(pairs)
    assert shape_cards(cards, CardOptions()) == cards


@pytest.fixture(scope="module")
def public_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    data = tmp_path_factory.mktemp("data")
    app = create_app(Settings(auth="off", public_base_url=PUBLIC_BASE, data_dir=data))
    with app.test_client() as client:
        yield client


PATIENTS = sorted(
    p.stem
    for pattern in ("css-*.json", "case-*.json")
    for p in (FIXTURES / "patients").glob(pattern)
)
ORDERS = sorted(p.stem for p in (FIXTURES / "orders").glob("*.json"))


def test_every_card_served_for_every_fixture_meets_every_clients_limits(
    public_client: FlaskClient,
) -> None:
    served: list[dict[str, Any]] = []
    calls = [("patient-view", p, None) for p in PATIENTS]
    calls += [("order-sign", p, o) for p in PATIENTS for o in ORDERS]
    for hook, patient, orders in calls:
        response = hook_call(public_client, hook, patient, orders)
        assert response.status_code == 200, (hook, patient, orders, response.get_json())
        cards = response.get_json()["cards"]
        assert all_problems(cards) == [], (hook, patient, orders)
        served += cards
    topics = {c["source"]["topic"]["code"] for c in served}
    assert {
        "mals",
        "crs",
        "ifngdriven",
        "il6driven",
        "ordermismatch",
        "multiplexassayneeded",
    } <= topics
    assert any(c.get("links") for c in served)


def test_plain_text_fields_show_comparisons_as_written_and_detail_stays_escaped(
    public_client: FlaskClient,
) -> None:
    cards = hook_call(public_client, "patient-view", "css-immunoparalysis").get_json()["cards"]
    summaries = " ".join(c["summary"] for c in cards)
    assert "HLA-DR < 5,000" in summaries, summaries
    # The checker catches what the old rendering sent.
    escaped = {**cards[0], "summary": "Sepsis (HLA-DR &lt; 5,000)"}
    assert plain_text_problems(escaped) == ["summary holds an escape: 'Sepsis (HLA-DR &lt; 5,000)'"]
    assert plain_text_problems({**cards[0], "summary": "a \\_b"}) != []
    # detail is Markdown rendered with raw HTML (the sandbox): values there stay escaped.
    assert all("<" not in c["detail"].replace("<https://", "") for c in cards)


def test_a_value_with_markup_or_control_characters_is_plain_and_one_line(runtime: Runtime) -> None:
    template = runtime.cards.kit.plain_env.from_string("{{ drug }}: check the label first")
    text = template.render(drug="anakinra\u202e <b>x</b>\n*100* mg")
    assert plain_line(text) == "anakinra <b>x</b> *100* mg: check the label first"


def test_the_readme_lists_each_old_topic_code_with_its_new_one(runtime: Runtime) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for card_type, template in runtime.cards.kit.templates.items():
        new = template.spec.topic.code
        assert new == card_type.replace("-", "")  # the old code without its hyphens
        if new != card_type:
            assert f"| `{card_type}` | `{new}` |" in readme


def test_a_topic_code_epic_would_refuse_stops_start_up(tmp_path: Path) -> None:
    import shutil

    from cds_service.cards.templates import CardKit, default_cards_dir
    from cds_service.yamlfile import ConfigFileError

    cards = tmp_path / "cards"
    shutil.copytree(default_cards_dir(), cards)
    path = cards / "il6-driven.yaml"
    path.write_text(path.read_text().replace("code: il6driven", "code: il6-driven"))
    with pytest.raises(ConfigFileError, match=r"il6-driven\.yaml.*topic"):
        CardKit(cards)
    path.write_text(path.read_text().replace("code: il6-driven", "code: il1driven"))
    with pytest.raises(ConfigFileError, match="already used by"):
        CardKit(cards)


def test_a_summary_that_outgrows_the_limit_is_cut_never_a_failed_answer(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    """Start-up checks the longest sample values; a value longer still (a hospital's long rule
    text) is cut with an ellipsis at answer time, and the log says which template to shorten."""
    assessment = assess(Evidence(as_of=datetime(2026, 12, 1, tzinfo=UTC), analytes={}, problems=()),
                        runtime.rules)  # fmt: skip
    finding = OrderFinding(
        kind="dose-limit", order="MedicationRequest/x", drug="tocilizumab",
        drug_class="il6-blockade", reason="8 mg/kg ordered, " + "above a long limit " * 12,
    )  # fmt: skip
    with caplog.at_level(logging.WARNING):
        card = runtime.cards.order_caution(finding, assessment, ())
    assert len(card.summary) <= 139 and card.summary.endswith("…")
    assert card.summary.startswith("tocilizumab: 8 mg/kg ordered, above a long limit")
    assert any("order-caution" in r.getMessage() and "cut to 139" in r.getMessage()
               for r in caplog.records)  # fmt: skip
