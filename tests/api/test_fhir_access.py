"""Hook calls that need the FHIR server: the real one (sekmet), and every fault the issue names.

Each fault case answers within the deadline with its documented status: 412 with an
OperationOutcome when no data could be read, 200 with an info card when some could; a fhirServer
that may not be contacted (decided before any connection or DNS lookup) is one more such gap.
"""

from __future__ import annotations

import copy
import json
import logging
import socket
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient

from cds_service import create_app
from cds_service.api.runtime import EXTENSION_KEY
from cds_service.composition import build_runtime
from cds_service.decision import HookContext, PatientRecord, decide
from cds_service.evidence.times import parse_fhir_datetime
from cds_service.gathering import gather_record
from cds_service.hooks.request import HookRequest
from cds_service.runtime import Runtime
from cds_service.settings import Settings
from tests.conftest import load_fixture
from tests.fault_server import FaultServer, fault_server
from tests.fhir_server import client_prefetch, fixture_patient_ids, fixture_patients
from tests.servers import cds_service, free_port

SERVICE = "/cds-services/cytokine-storm-patient-view"
HOOKS = {
    "cytokine-storm-patient-view": "hooks/patient-view.json",
    "cytokine-storm-order-select": "hooks/order-select.json",
    "cytokine-storm-order-sign": "hooks/order-sign.json",
}
PV = "hooks/patient-view.json"
DEMO = "fhir-access-demo"
TOKEN = "eyJhbGciOi-access-token-that-must-never-leak"
DEADLINE = 2.0
# The answer may come a little after the FHIR deadline (parsing, the card); never much later.
ANSWER_WITHIN = DEADLINE + 0.5


@pytest.fixture(scope="module")
def faults(fhir_server: str) -> Iterator[FaultServer]:
    with fault_server(upstream=fhir_server) as server:
        yield server


@pytest.fixture(scope="module")
def down_server() -> str:
    """An allowlisted FHIR base on which nothing listens."""
    return f"http://127.0.0.1:{free_port()}/fhir"


@pytest.fixture
def fhir_client(fhir_server: str, faults: FaultServer, down_server: str) -> Iterator[FlaskClient]:
    # The allowlist names the real server, the fault server's root (every fault lies below it)
    # and the down server.
    settings = Settings(auth="off", fhir_allowlist=[fhir_server, faults.base, down_server])
    app = create_app(settings)
    with app.test_client() as client:
        yield client
    runtime: Runtime = app.extensions[EXTENSION_KEY]
    runtime.fhir.close()


def hook_body(
    fixture: str,
    patient: str,
    fhir_server: str | None,
    prefetch: dict[str, Any] | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    body = copy.deepcopy(load_fixture(fixture))
    body["context"]["patientId"] = patient
    for entry in body["context"].get("draftOrders", {}).get("entry", []):
        entry["resource"]["subject"] = {"reference": f"Patient/{patient}"}  # the chart's orders
    body.pop("prefetch", None)
    body.pop("fhirServer", None)
    if fhir_server is not None:
        body["fhirServer"] = fhir_server
    if prefetch is not None:
        body["prefetch"] = prefetch
    if token is not None:
        body["fhirAuthorization"] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "user/Observation.read user/Patient.read",
            "subject": "cytokine-cds",
        }
    return body


def without_uuids(value: Any) -> Any:
    """A response without what differs between two identical calls: uuids, the order time,
    the signed token of the profile page link."""
    if isinstance(value, dict):
        if value.get("label") == "View cytokine profile" and "url" in value:
            return {**value, "url": value["url"].rsplit("/", 1)[0]}
        return {k: without_uuids(v) for k, v in value.items() if k not in ("uuid", "authoredOn")}
    if isinstance(value, list):
        return [without_uuids(item) for item in value]
    return value


def call(client: FlaskClient, body: dict[str, Any]) -> tuple[Any, float]:
    started = time.monotonic()
    response = client.post(SERVICE, json=body)
    return response, time.monotonic() - started


def data_gap_card(response: Any) -> dict[str, Any]:
    cards = [c for c in response.get_json()["cards"] if "could not be read" in c["summary"]]
    assert len(cards) == 1, response.get_json()
    assert cards[0]["indicator"] == "info"
    return dict(cards[0])


def diagnostics(response: Any) -> str:
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    return str(body["issue"][0]["diagnostics"])


def test_no_prefetch_gives_the_same_cards_as_full_prefetch_for_every_fixture_patient(
    fhir_server: str,
) -> None:
    runtime: Runtime = create_app(Settings(auth="off")).extensions[EXTENSION_KEY]
    env = {"CYTOKINE_CDS_FHIR_ALLOWLIST": fhir_server}
    with cds_service(env=env) as base:
        for patient in fixture_patient_ids():
            for service_id, fixture in HOOKS.items():
                templates = runtime.services[service_id].prefetch
                prefetch = client_prefetch(fhir_server, templates, patient)
                answers = [
                    requests.post(
                        f"{base}/cds-services/{service_id}",
                        json=hook_body(fixture, patient, fhir_server, prefetch=given),
                        timeout=10,
                    )
                    for given in (prefetch, None)
                ]
                assert [a.status_code for a in answers] == [200, 200], answers[1].text
                full, fetched = (without_uuids(a.json()) for a in answers)
                assert fetched == full, (patient, service_id)
                assert not any("could not be read" in c["summary"] for c in fetched["cards"])


PATIENT_ONLY = {"patient": {"resourceType": "Patient", "id": DEMO}}
# The cytokine search prefetched (nothing found is an answer too); the labs must be read.
CYTOKINES_ONLY = {**PATIENT_ONLY, "cytokines": {"resourceType": "Bundle", "type": "searchset"}}


@pytest.mark.parametrize(
    ("fault", "token", "cause"),
    [
        ("down", None, "could not be reached"),
        ("slow", None, "did not answer in time"),
        ("status-401", TOKEN, "refused the access token (HTTP 401)"),
        ("status-401", None, "requires an access token (HTTP 401)"),
        ("status-403", TOKEN, "denied access (HTTP 403)"),
        ("status-500", TOKEN, "failed (HTTP 500)"),
        ("status-503", TOKEN, "failed (HTTP 503)"),
        ("garbage", TOKEN, "was not JSON"),
        ("redirect", TOKEN, "redirect (HTTP 302)"),
    ],
)
def test_fhir_server_faults(
    fhir_client: FlaskClient,
    faults: FaultServer,
    down_server: str,
    caplog: pytest.LogCaptureFixture,
    fault: str,
    token: str | None,
    cause: str,
) -> None:
    server = down_server if fault == "down" else faults.url(fault)
    caplog.set_level(logging.DEBUG)

    # Nothing prefetched, nothing read: 412 naming the cause.
    nothing, elapsed = call(fhir_client, hook_body(PV, DEMO, server, token=token))
    assert elapsed < ANSWER_WITHIN
    assert nothing.status_code == 412, nothing.get_json()
    assert cause in diagnostics(nothing)

    # Only the Patient prefetched: the rules read nothing from it, so this is still nothing.
    patient_only, _ = call(
        fhir_client, hook_body(PV, DEMO, server, prefetch=PATIENT_ONLY, token=token)
    )
    assert patient_only.status_code == 412, patient_only.get_json()

    # The cytokines prefetched, the labs unreadable: 200 with an info card naming what is missing.
    partial, elapsed = call(
        fhir_client,
        hook_body(PV, DEMO, server, prefetch=CYTOKINES_ONLY, token=token),
    )
    assert elapsed < ANSWER_WITHIN
    assert partial.status_code == 200
    card = data_gap_card(partial)
    assert "**labs**" in card["detail"]
    assert "**cytokines**" not in card["detail"] and "**patient**" not in card["detail"]
    assert cause in card["detail"]

    for response in (nothing, patient_only, partial):
        assert TOKEN not in response.get_data(as_text=True)
    assert TOKEN not in caplog.text
    assert DEMO not in caplog.text  # no patient id in the logs either
    assert faults.trapped == []  # the redirect's target was never contacted


def test_a_partly_read_search_still_answers_with_what_was_read(
    fhir_client: FlaskClient, faults: FaultServer
) -> None:
    # Page 1 of the labs comes in prefetch; the server fails on page 2.
    server = faults.url("page2-500")
    paged = requests.get(
        f"{server}/Observation?patient={DEMO}&code=http://loinc.org|2276-4&_count=1", timeout=5
    ).json()
    prefetch = {**PATIENT_ONLY, "cytokines": {"resourceType": "Bundle", "type": "searchset"}}
    prefetch["labs"] = paged
    response, elapsed = call(fhir_client, hook_body(PV, DEMO, server, prefetch))
    assert elapsed < ANSWER_WITHIN
    assert response.status_code == 200
    detail = data_gap_card(response)["detail"]
    assert "**labs** (only partly read)" in detail and "HTTP 500" in detail


def test_operation_outcomes_in_fetched_pages_are_data_problems_of_the_record(
    faults: FaultServer,
) -> None:
    """What the FHIR server notes beside its results is carried like prefetch's notes: into
    the record's problems, hence the evidence, the /evaluate answer and the audit row (see
    tests/pipeline/test_hook_problems.py for that part of the way)."""
    runtime = build_runtime(Settings(auth="off", fhir_allow_loopback=True))
    service = runtime.services["cytokine-storm-patient-view"]
    request = HookRequest.model_validate(hook_body(PV, DEMO, faults.url("outcome-entry")))
    try:
        record = gather_record(runtime.fhir, service, request)
    finally:
        runtime.fhir.close()
    assert record.gaps == ()
    assert any(r["resourceType"] == "Observation" for r in record.resources)
    assert "OperationOutcome" not in {r["resourceType"] for r in record.resources}
    outcomes = {(p.code, p.reason, p.reference) for p in record.problems}
    reason = "OperationOutcome issue: severity warning, code too-costly"
    assert outcomes == {("operation-outcome", reason, f"fetch:{key}") for key in service.needed}


def test_a_server_refusing_combo_code_is_read_by_code_and_the_card_says_what_may_be_missed(
    fhir_client: FlaskClient, faults: FaultServer
) -> None:
    patient = "case-cart-day3"  # CRS by ASTCT: fever and hypotension are read from vitals
    strict, _ = call(fhir_client, hook_body(PV, patient, faults.url("strict-combo")))
    assert strict.status_code == 200, strict.get_json()
    detail = data_gap_card(strict)["detail"]
    assert "combo-code" in detail and "component of another Observation" in detail
    assert "cytokines" in detail and "vitals" in detail
    # The cytokines are still read: the same cards as from a server that runs combo-code.
    full, _ = call(fhir_client, hook_body(PV, patient, faults.url("proxy")))
    topics = [c["source"]["topic"]["code"] for c in full.get_json()["cards"]]
    assert topics and "dataincomplete" not in topics
    shown = [c["source"]["topic"]["code"] for c in strict.get_json()["cards"]]
    assert shown == [*topics, "dataincomplete"]


def test_a_patient_the_fhir_server_does_not_know_is_said_not_an_all_clear(
    fhir_client: FlaskClient, fhir_server: str
) -> None:
    """The Patient read answers 404 (an EHR id the server does not use), so every search by
    that id finds nothing: the answer says so, naming no id, instead of an empty list."""
    response, _ = call(fhir_client, hook_body(PV, "no-such-patient-here", fhir_server))
    assert response.status_code == 200, response.get_json()
    card = data_gap_card(response)
    assert "has no Patient with the chart's patient id (HTTP 404)" in card["detail"]
    assert "no-such-patient-here" not in str(response.get_json())
    assert len(response.get_json()["cards"]) == 1


def test_no_prefetch_and_no_fhir_server_is_412(fhir_client: FlaskClient) -> None:
    response, _ = call(fhir_client, hook_body(PV, DEMO, None))
    assert response.status_code == 412
    assert "no fhirServer" in diagnostics(response)
    assert response.get_json()["issue"][0]["code"] == "incomplete"


# Refusals: decided from the URL, before any connection or DNS lookup


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every name lookup and connection attempt; loopback ones go through."""
    attempts: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def spy(host: Any, *args: Any, **kwargs: Any) -> Any:
        attempts.append(str(host))
        if str(host) not in ("127.0.0.1", "localhost"):
            raise AssertionError(f"a connection to {host} was attempted")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", spy)
    return attempts


@pytest.mark.parametrize(
    ("refused", "setting"),
    [
        ("https://ehr.invalid/fhir", "CYTOKINE_CDS_FHIR_ALLOWLIST"),  # not allowlisted
        ("https://ehr.invalid/fhir-other", "CYTOKINE_CDS_FHIR_ALLOWLIST"),  # beside an entry
        ("http://127.0.0.2:8080/fhir", "CYTOKINE_CDS_FHIR_ALLOWLIST"),  # loopback, not listed
        ("http://ehr.invalid/fhir/allowed", "CYTOKINE_CDS_FHIR_ALLOW_HTTP"),  # http off loopback
    ],
)
def test_servers_the_service_may_not_contact_are_gaps_and_412_when_nothing_was_had(
    no_network: list[str], fhir_server: str, refused: str, setting: str
) -> None:
    settings = Settings(
        auth="off", fhir_allowlist=[fhir_server, "https://ehr.invalid/fhir/allowed"]
    )
    client = create_app(settings).test_client()
    # Nothing in prefetch: 412 (CDS Hooks "Prefetch Template"), naming fhirServer and the setting.
    response, elapsed = call(client, hook_body(PV, DEMO, refused, None, TOKEN))
    assert response.status_code == 412
    issue = response.get_json()["issue"][0]
    assert setting in issue["diagnostics"] and issue["expression"] == ["fhirServer"]
    assert TOKEN not in response.get_data(as_text=True)
    assert elapsed < 0.5
    # Part in prefetch: the answer, with each key that could not be read named in the info card.
    response, elapsed = call(client, hook_body(PV, DEMO, refused, CYTOKINES_ONLY, TOKEN))
    assert response.status_code == 200
    detail = data_gap_card(response)["detail"]
    assert setting.replace("_", "\\_") in detail and "labs" in detail
    assert TOKEN not in response.get_data(as_text=True)
    assert elapsed < 0.5
    assert no_network == []


# The service's own reads: the Observation searches merged (the default) or one per key


def fixture_bundle(patient: str) -> dict[str, Any]:
    """The fixture Bundle of the patient with this id."""
    for path in fixture_patients():
        bundle: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        resources = [entry["resource"] for entry in bundle["entry"]]
        if any(r["resourceType"] == "Patient" and r.get("id") == patient for r in resources):
            return bundle
    raise AssertionError(f"no fixture holds Patient/{patient}")


def fixture_time(patient: str) -> datetime:
    """An hour after the newest result of the fixture patient."""
    times = [
        parse_fhir_datetime(entry["resource"].get("effectiveDateTime"))
        for entry in fixture_bundle(patient)["entry"]
    ]
    return max(t for t in times if t is not None) + timedelta(hours=1)


def observation_searches(faults: FaultServer, since: int) -> int:
    return sum("/fhir/Observation" in path for path in faults.paths("proxy")[since:])


@pytest.mark.parametrize("patient", fixture_patient_ids())
def test_merged_searches_give_the_same_evidence_and_cards_as_one_search_per_key(
    faults: FaultServer, patient: str
) -> None:
    decisions, searches = {}, {}
    for merge in (False, True):
        runtime = build_runtime(
            Settings(auth="off", fhir_allow_loopback=True, fhir_merge_code_searches=merge)
        )
        service = runtime.services["cytokine-storm-patient-view"]
        request = HookRequest.model_validate(hook_body(PV, patient, faults.url("proxy")))
        since = len(faults.paths("proxy"))
        try:
            record = gather_record(runtime.fhir, service, request)
        finally:
            runtime.fhir.close()
        searches[merge] = observation_searches(faults, since)
        assert record.gaps == ()
        context = HookContext("patient-view", patient, user_id=request.context.get("userId"))
        # At the fixture's own time, so that its results are fresh and the rules judge them.
        decisions[merge] = decide(runtime.knowledge, record, context, fixture_time(patient))
    assert searches == {False: 4, True: 1}
    separate, merged = decisions[False], decisions[True]
    assert merged.evidence == separate.evidence
    assert merged.assessment == separate.assessment
    cards = [
        without_uuids([c.model_dump(mode="json") for c in d.cards]) for d in (separate, merged)
    ]
    assert cards[0] == cards[1]


def test_the_merged_reads_are_evidence_of_substance() -> None:
    """The comparison above compares something: at the fixtures' time their values are read
    and most fixture patients get a card."""
    runtime = build_runtime(Settings(auth="off"))
    with_cards = 0
    for patient in fixture_patient_ids():
        bundle = fixture_bundle(patient)
        record = PatientRecord([entry["resource"] for entry in bundle["entry"]])
        decision = decide(
            runtime.knowledge, record, HookContext("patient-view", patient), fixture_time(patient)
        )
        with_cards += bool(decision.cards)
        assert decision.evidence.analytes, patient
    assert with_cards >= len(fixture_patient_ids()) // 2


def test_a_no_prefetch_call_sends_one_observation_search_and_answers_as_before(
    faults: FaultServer,
) -> None:
    answers, searches = {}, {}
    for merge in (False, True):
        settings = Settings(
            auth="off", fhir_allowlist=[faults.base], fhir_merge_code_searches=merge
        )
        app = create_app(settings)
        since = len(faults.paths("proxy"))
        with app.test_client() as client:
            response, _ = call(client, hook_body(PV, "lab-bench", faults.url("proxy")))
        app.extensions[EXTENSION_KEY].fhir.close()
        assert response.status_code == 200, response.get_json()
        answers[merge] = without_uuids(response.get_json())
        searches[merge] = observation_searches(faults, since)
    assert searches == {False: 4, True: 1}
    assert answers[True] == answers[False]
