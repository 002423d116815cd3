"""The link on each card and GET /profile/<token>, through the Flask test client and a real
(SQLite) store: what the cards carry, what the page answers, its headers, and its failures."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from cds_service import create_app
from cds_service.api.runtime import EXTENSION_KEY
from cds_service.profile.links import ProfileLinks
from cds_service.runtime import Runtime
from cds_service.settings import Settings
from cds_service.store.schema import profiles
from tests.conftest import ROOT, hook_call, load_fixture
from tests.profile.conftest import SUBTYPE_PATIENTS
from tests.profile.page_reader import read_page

SECRET = "profile-secret-for-tests-0123456789"
# Without a public base URL, links use the address served on (never the request's Host header).
LINK = re.compile(
    r"http://127\.0\.0\.1:8080/profile/[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{43}"
)
STRICT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


def make_client(tmp_path: Path, **fields: Any) -> Iterator[FlaskClient]:
    settings = Settings(
        auth="off",
        data_dir=tmp_path / "data",
        profile_secret=SECRET,  # type: ignore[arg-type]
        **fields,
    )
    app = create_app(settings)
    with app.test_client() as client:
        yield client


@pytest.fixture
def client(tmp_path: Path) -> Iterator[FlaskClient]:
    yield from make_client(tmp_path)


def runtime_of(client: FlaskClient) -> Runtime:
    app: Flask = client.application
    return app.extensions[EXTENSION_KEY]  # type: ignore[no-any-return]


def cards(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.get_json()
    return response.get_json()["cards"]  # type: ignore[no-any-return]


def profile_link(card: dict[str, Any]) -> str:
    (link,) = card["links"]
    assert link["type"] == "absolute"
    assert link["label"] == "View cytokine profile"
    assert set(link) == {"label", "url", "type"}
    return link["url"]  # type: ignore[no-any-return]


def lab_values(patient: str) -> set[str]:
    """Every number the patient's results carry, as written in the fixture."""
    values = set()
    for entry in load_fixture(f"patients/{patient}.json")["entry"]:
        resource = entry["resource"]
        for holder in [resource, *resource.get("component", [])]:
            quantity = holder.get("valueQuantity")
            if quantity:
                values.add(f"{quantity['value']:g}")
    return values


SETTING_TOPICS = {"css-il1-mals": "mals"}


def assert_opaque(url: str, patient: str) -> None:
    assert LINK.fullmatch(url), url
    assert patient not in url
    # The token's only number-like part is its base-62 timestamp; no result appears as text
    # between separators (a value could only hide inside the random id or the signature).
    parts = urlsplit(url).path.removeprefix("/profile/").split(".")
    assert not set(parts) & lab_values(patient)
    assert not urlsplit(url).query and not urlsplit(url).fragment


@pytest.mark.parametrize(("patient", "topic"), sorted(SUBTYPE_PATIENTS.items()))
def test_every_subtype_card_links_to_its_profile(
    client: FlaskClient, patient: str, topic: str
) -> None:
    (card,) = cards(hook_call(client, "patient-view", patient))
    # The subtype as letters and digits; a setting card carries its state's (sepsis MALS).
    assert card["source"]["topic"]["code"] == SETTING_TOPICS.get(patient, topic.replace("-", ""))
    url = profile_link(card)
    assert_opaque(url, patient)
    page = client.get(urlsplit(url).path)
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    content = read_page(page.get_data(as_text=True))
    assert content.ids["subtype"] == topic
    assert len([f for f in content.figures if f.startswith("axis-")]) == 5
    assert content.rows


def test_order_mismatch_and_multiplex_cards_on_order_hooks_link_too(client: FlaskClient) -> None:
    (mismatch,) = cards(hook_call(client, "order-sign", "css-il1-mals", "tocilizumab"))
    assert mismatch["source"]["topic"]["code"] == "ordermismatch"
    url = profile_link(mismatch)
    assert_opaque(url, "css-il1-mals")
    page = read_page(client.get(urlsplit(url).path).get_data(as_text=True))
    assert page.ids["subtype"] == "il1-driven"
    assert page.ids["setting-applied"].startswith("Sepsis")  # the setting whose rule fired
    assert page.row("Ferritin (MALS range)")["result"] == "12,500 ng/mL"
    (multiplex,) = cards(hook_call(client, "order-select", "css-multiplex-needed", "anakinra"))
    assert multiplex["source"]["topic"]["code"] == "multiplexassayneeded"
    assert_opaque(profile_link(multiplex), "css-multiplex-needed")


def test_cards_of_one_call_share_one_stored_profile(client: FlaskClient) -> None:
    """Two draft orders that both do not fit immunoparalysis: two cards, one profile."""
    orders = load_fixture("orders/anakinra.json")
    orders["entry"] += load_fixture("orders/tocilizumab.json")["entry"]
    served = cards(hook_call(client, "order-sign", "css-immunoparalysis", orders))
    assert [c["source"]["topic"]["code"] for c in served] == ["ordermismatch"] * 2
    assert profile_link(served[0]) == profile_link(served[1])
    with runtime_of(client).store.engine.connect() as connection:  # type: ignore[union-attr]
        assert connection.scalar(select(func.count()).select_from(profiles)) == 1
        created = connection.scalar(select(profiles.c.created_at))
    assert created is not None and abs(time.time() - created.timestamp()) < 60


def test_no_card_no_profile(client: FlaskClient) -> None:
    assert cards(hook_call(client, "patient-view", "css-no-inflammation")) == []
    with runtime_of(client).store.engine.connect() as connection:  # type: ignore[union-attr]
        assert connection.scalar(select(func.count()).select_from(profiles)) == 0


def test_the_data_incomplete_card_carries_no_link(tmp_path: Path) -> None:
    """Labs not prefetched and the FHIR server (a closed loopback port) unreachable: the
    pattern card links to its profile, the card naming the missing data does not."""
    from datetime import UTC, datetime

    from cds_service.demo import hook_request
    from tests.servers import free_port

    for client in make_client(tmp_path, fhir_allow_loopback=True):
        service = runtime_of(client).services["cytokine-storm-patient-view"]
        body = hook_request(
            service,
            load_fixture("patients/case-cart-day3.json"),
            now=datetime.now(UTC),
            fhir_server=f"http://127.0.0.1:{free_port()}/fhir",
        )
        del body["prefetch"]["labs"]
        served = cards(client.post(f"/cds-services/{service.id}", json=body))
        topics = {card["source"]["topic"]["code"]: card for card in served}
        assert set(topics) == {"crs", "dataincomplete"}
        assert "links" not in topics["dataincomplete"]
        page = client.get(urlsplit(profile_link(topics["crs"])).path)
        assert page.status_code == 200


def test_links_use_the_public_base_url_when_set(tmp_path: Path) -> None:
    for client in make_client(tmp_path, public_base_url="https://cds.example.org/cytokine/"):
        (card,) = cards(hook_call(client, "patient-view", "css-ifng-hlh"))
        url = profile_link(card)
        assert url.startswith("https://cds.example.org/cytokine/profile/")
        token = url.rsplit("/", 1)[1]
        assert client.get(f"/profile/{token}").status_code == 200


def test_the_page_answers_with_strict_headers(client: FlaskClient) -> None:
    (card,) = cards(hook_call(client, "patient-view", "css-mixed"))
    path = urlsplit(profile_link(card)).path
    for response in (client.get(path), client.get("/profile/not-a-token")):
        headers = response.headers
        assert headers["Content-Security-Policy"] == STRICT_CSP
        assert headers["Cache-Control"] == "no-store"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Content-Type"] == "text/html; charset=utf-8"
    head = client.head(path)
    assert head.status_code == 200 and head.headers["Cache-Control"] == "no-store"


def test_frame_ancestors_are_configurable(tmp_path: Path) -> None:
    ancestors = ["'self'", "https://ehr.example.org"]
    for client in make_client(tmp_path, profile_frame_ancestors=ancestors):
        (card,) = cards(hook_call(client, "patient-view", "css-mixed"))
        response = client.get(urlsplit(profile_link(card)).path)
        csp = response.headers["Content-Security-Policy"]
        assert csp.endswith("frame-ancestors 'self' https://ehr.example.org")
        assert "X-Frame-Options" not in response.headers


def refused_page(response: Any, status: int, heading: str, *secrets: str) -> None:
    assert response.status_code == status
    body = response.get_data(as_text=True)
    assert read_page(body).ids["refusal"] == heading
    assert response.headers["Content-Security-Policy"] == STRICT_CSP
    assert response.headers["Cache-Control"] == "no-store"
    for secret in secrets:
        assert secret not in body


def test_a_tampered_token_gets_the_plain_403_page(client: FlaskClient) -> None:
    (card,) = cards(hook_call(client, "patient-view", "css-il1-mals"))
    token = profile_link(card).rsplit("/", 1)[1]
    assessment_id, stamp, signature = token.split(".")
    forged = ".".join(
        [("A" if assessment_id[0] != "A" else "B") + assessment_id[1:], stamp, signature]
    )
    refused_page(client.get(f"/profile/{forged}"), 403, "This link has expired", forged, "IL-18")
    unsigned = f"{assessment_id}.{stamp}.{'A' * 43}"
    refused_page(client.get(f"/profile/{unsigned}"), 403, "This link has expired", "IL-18")
    refused_page(client.get("/profile/x"), 403, "This link has expired")


def test_an_expired_token_gets_the_plain_403_page(client: FlaskClient) -> None:
    (card,) = cards(hook_call(client, "patient-view", "css-il1-mals"))
    assessment_id = profile_link(card).rsplit("/", 1)[1].split(".")[0]
    # The same secret and a clock 1 h 1 s in the past: the link was issued 3601 s ago.
    past = ProfileLinks(SECRET.encode(), 3600, clock=lambda: time.time() - 3601)
    old = past.sign(assessment_id)
    refused_page(client.get(f"/profile/{old}"), 403, "This link has expired", assessment_id)
    recent = ProfileLinks(SECRET.encode(), 3600, clock=lambda: time.time() - 3500)
    assert client.get(f"/profile/{recent.sign(assessment_id)}").status_code == 200


def test_the_lifetime_setting_applies(tmp_path: Path) -> None:
    for client in make_client(tmp_path, profile_link_lifetime_seconds=60):
        (card,) = cards(hook_call(client, "patient-view", "css-mixed"))
        assessment_id = profile_link(card).rsplit("/", 1)[1].split(".")[0]
        old = ProfileLinks(SECRET.encode(), 60, clock=lambda: time.time() - 61)
        token = old.sign(assessment_id)
        refused_page(client.get(f"/profile/{token}"), 403, "This link has expired")


def test_a_valid_link_to_a_profile_not_kept_gets_404(client: FlaskClient) -> None:
    link = ProfileLinks(SECRET.encode(), 3600).issue("http://localhost")
    refused_page(client.get(f"/profile/{link.token}"), 404, "This profile is no longer available")


def test_a_purged_profile_is_gone(client: FlaskClient) -> None:
    from datetime import timedelta

    (card,) = cards(hook_call(client, "patient-view", "css-il6-covid"))
    store = runtime_of(client).store
    assert store is not None
    result = store.purge(timedelta(0))
    assert (result.hook_calls, result.profiles) == (1, 1)
    path = urlsplit(profile_link(card)).path
    refused_page(client.get(path), 404, "This profile is no longer available")


def test_page_off_no_links_and_no_route(tmp_path: Path) -> None:
    for client in make_client(tmp_path, profile_page=False):
        (card,) = cards(hook_call(client, "patient-view", "css-il1-mals"))
        assert "links" not in card
        token = ProfileLinks(SECRET.encode(), 3600).issue("http://localhost").token
        response = client.get(f"/profile/{token}")
        assert response.status_code == 404
        assert response.get_json()["resourceType"] == "OperationOutcome"
        assert not (tmp_path / "data" / "profile-link.secret").exists()


def test_store_down_the_call_answers_and_the_page_is_unavailable_not_500(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "blocker").write_text("")  # a file where the database's folder should be
    url = f"sqlite:///{tmp_path / 'blocker' / 'audit.db'}"
    for client in make_client(tmp_path, database_url=url):
        (card,) = cards(hook_call(client, "patient-view", "css-il1-mals"))
        path = urlsplit(profile_link(card)).path
        response = client.get(path)
        refused_page(response, 503, "The profile is unavailable right now")
        assert response.headers["Retry-After"] == "30"
        assert "profile page: the store could not be read" in caplog.text
        assert path.rsplit("/", 1)[1] not in caplog.text  # never the token


def test_the_profile_route_needs_no_cds_client_jwt(tmp_path: Path) -> None:
    """With authentication on, /cds-services refuses a call without a JWT; the profile page is
    outside it: the signed token is its authorisation."""
    settings = Settings(
        data_dir=tmp_path / "data",
        profile_secret=SECRET,  # type: ignore[arg-type]
        trusted_clients=ROOT / "deploy" / "trusted-clients.sandbox.json",
        public_base_url="http://localhost",
    )
    app = create_app(settings)
    client = app.test_client()
    assert client.get("/cds-services").status_code == 401
    token = ProfileLinks(SECRET.encode(), 3600).issue("http://localhost").token
    assert client.get(f"/profile/{token}").status_code == 404  # reached: not stored


def test_a_car_t_page_shows_the_settings_score_and_the_pattern_as_description(
    client: FlaskClient,
) -> None:
    """ASTCT grading applies in CAR-T; cHIS (COVID-19) does not, and the cytokine pattern did not
    choose tocilizumab: the page says so instead of calling it the rule that fired."""
    card = hook_call(client, "patient-view", "case-cart-day3").get_json()["cards"][0]
    assert card["source"]["topic"]["code"] == "crs"
    page = client.get(urlsplit(card["links"][0]["url"]).path).get_data(as_text=True)
    scores = re.findall(r'<dt>([^<]*)</dt><dd class="score">', page)
    assert any("ASTCT" in label for label in scores), scores
    assert not any("cHIS" in label or "HScore" in label for label in scores), scores
    heading = re.search(r'<h2 id="rule-heading">([^<]*)</h2>', page)
    assert heading is not None and "The rule that fired" not in heading.group(1)
    assert "described only" in heading.group(1)


def test_a_page_without_a_recorded_setting_shows_chis_and_the_rule_that_fired(
    client: FlaskClient,
) -> None:
    card = hook_call(client, "patient-view", "css-il6-covid").get_json()["cards"][0]
    page = client.get(urlsplit(card["links"][0]["url"]).path).get_data(as_text=True)
    scores = re.findall(r'<dt>([^<]*)</dt><dd class="score">', page)
    assert any("cHIS" in label for label in scores) and not any("ASTCT" in s for s in scores)
    assert '<h2 id="rule-heading">The rule that fired</h2>' in page


def test_each_score_row_names_the_population_the_score_holds_for(client: FlaskClient) -> None:
    """The scores file's `ages.population`: the ASTCT grade after CAR-T, cHIS in adults."""
    for patient, wanted in (
        ("case-cart-day3", "population: children and adults after immune effector cell therapy"),
        ("css-il6-covid", "population: adults hospitalised with COVID-19"),
    ):
        card = hook_call(client, "patient-view", patient).get_json()["cards"][0]
        page = client.get(urlsplit(card["links"][0]["url"]).path).get_data(as_text=True)
        rows = re.findall(r'<dd class="score">([^<]*)</dd>', page)
        assert any(wanted in row for row in rows), rows


@pytest.mark.parametrize(
    ("patient", "hook", "orders", "heading"),
    [
        # a setting state, no cytokine pattern
        ("case-covid-recovery", "patient-view", None, "COVID-19: the recorded data meet"),
        ("case-cart-redose", "patient-view", None, "CAR-T/bispecific, day 3: the recorded"),
        # a label caution on an order
        ("case-covid-recovery", "order-sign", "emapalumab", "COVID-19: the recorded data meet"),
    ],
)
def test_a_card_of_a_setting_without_a_cytokine_pattern_links_to_its_profile(
    client: FlaskClient, patient: str, hook: str, orders: str | None, heading: str
) -> None:
    """The setting's card is what the clinician acts on: its evidence is one click away too."""
    answered = cards(hook_call(client, hook, patient, orders))
    assert answered
    for card in answered:
        url = profile_link(card)
        assert_opaque(url, patient)
        page = read_page(client.get(urlsplit(url).path).get_data(as_text=True))
        assert page.ids["pattern"].startswith(heading)
        assert page.ids["setting-applied"]
        assert page.rows
