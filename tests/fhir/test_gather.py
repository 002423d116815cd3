"""Prefetch plus FHIR server: what one hook call reads, against the real FHIR test server."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

import pytest

from cds_service.composition import fhir_access
from cds_service.fhir.gather import DataUnavailable, FhirAccess, Gathered
from cds_service.fhir.prefetch import read_prefetch
from cds_service.hooks.services import ServiceSpec
from cds_service.settings import Settings
from tests.fault_server import FaultServer, fault_server
from tests.fhir_server import client_prefetch, fixture_patient_ids


def _service_templates() -> dict[str, str]:
    from cds_service.composition import build_runtime

    services = build_runtime(Settings(auth="off")).services.values()
    return dict(next(iter(services)).prefetch)


# The prefetch templates the service really asks for (derived from the analyte catalog).
TEMPLATES = _service_templates()
DEMO = "fhir-access-demo"


@pytest.fixture(scope="module")
def faults() -> Iterator[FaultServer]:
    with fault_server() as server:
        yield server


def access(**settings: Any) -> FhirAccess:
    return fhir_access(Settings(**{"fhir_allow_loopback": True, **settings}))


def gather(
    fhir: FhirAccess,
    prefetch: dict[str, Any] | None,
    server: str | None,
    token: str | None = None,
    patient: str = DEMO,
    templates: dict[str, str] = TEMPLATES,
) -> Gathered:
    read = read_prefetch(prefetch, templates)
    context = {"patientId": patient, "userId": "Practitioner/doc"}
    try:
        return fhir.gather(read, templates, context, server, token)
    finally:
        fhir.close()


def page_size(template: str, count: int) -> str:
    changed = re.sub(r"_count=\d+", f"_count={count}", template)
    assert changed != template
    return changed


def identities(resources: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((r["resourceType"], r["id"]) for r in resources)


def test_every_service_asks_for_the_templates_tested_here() -> None:
    from cds_service.api.runtime import EXTENSION_KEY
    from cds_service.app import create_app

    services: dict[str, ServiceSpec] = (
        create_app(Settings(auth="off")).extensions[EXTENSION_KEY].services
    )
    assert all(dict(spec.prefetch) == TEMPLATES for spec in services.values())
    assert "combo-code=" in TEMPLATES["cytokines"]  # panels reported as components are found


@pytest.mark.parametrize("patient", fixture_patient_ids())
def test_fetched_data_equals_full_prefetch_for_every_fixture_patient(
    fhir_server: str, patient: str
) -> None:
    prefetch = client_prefetch(fhir_server, TEMPLATES, patient)
    from_prefetch = gather(access(), prefetch, fhir_server, patient=patient)
    assert from_prefetch.fetched is None  # complete prefetch: the FHIR server is not asked
    fetched = gather(access(), None, fhir_server, patient=patient)
    assert fetched.gaps == [] and from_prefetch.gaps == []
    assert fetched.fetched is not None and set(fetched.fetched.keys) == set(TEMPLATES)
    assert fetched.resources == from_prefetch.resources
    assert ("Patient", patient) in identities(fetched.resources)


def test_the_demo_patient_reads_exactly_its_cytokines_and_labs(fhir_server: str) -> None:
    got = gather(access(), None, fhir_server)
    assert identities(got.resources) == sorted(
        [("Patient", DEMO)]
        + [
            ("Observation", f"{DEMO}-{name}")
            for name in (
                *("il6-1", "il6-2", "ifng-1", "il1b-1"),
                *("ferritin-1", "ferritin-2", "crp-1", "lymph-1", "neut-1"),
            )
        ]
    )


def test_an_incomplete_prefetch_search_is_continued_from_its_next_link(fhir_server: str) -> None:
    paged = {**TEMPLATES, "cytokines": page_size(TEMPLATES["cytokines"], 2)}
    prefetch = client_prefetch(fhir_server, paged, DEMO)  # first page only, as the sandbox sends
    assert any(link["relation"] == "next" for link in prefetch["cytokines"]["link"])
    got = gather(access(), prefetch, fhir_server, templates=paged)
    assert got.gaps == []
    assert got.fetched is not None and list(got.fetched.keys) == ["cytokines"]
    full = gather(access(), None, fhir_server)
    assert identities(got.resources) == identities(full.resources)


def test_null_and_satisfied_keys_are_not_fetched_again(faults: FaultServer) -> None:
    prefetch: dict[str, Any] = {key: _empty_bundle() for key in TEMPLATES}
    prefetch["patient"] = None
    got = gather(access(), prefetch, faults.url("status-500"))
    assert got.gaps == [] and got.fetched is None
    assert faults.paths("status-500") == []


def test_a_prefetch_key_holding_an_error_is_fetched(fhir_server: str) -> None:
    prefetch = client_prefetch(fhir_server, TEMPLATES, DEMO)
    complete = gather(access(), copy.deepcopy(prefetch), fhir_server)
    prefetch["labs"] = {"resourceType": "OperationOutcome", "issue": []}
    got = gather(access(), prefetch, fhir_server)
    assert got.fetched is not None and list(got.fetched.keys) == ["labs"]
    assert identities(got.resources) == identities(complete.resources)


def test_a_prefetch_error_that_cannot_be_read_again_says_the_prefetch_failed() -> None:
    """An OperationOutcome in a key is the client's query failing, not a key left out."""
    prefetch = {
        "patient": {"resourceType": "Patient", "id": DEMO},
        "labs": {"resourceType": "OperationOutcome", "issue": [{"severity": "error"}]},
    }
    got = gather(access(), prefetch, None)
    reasons = {gap.key: gap.reason for gap in got.gaps}
    assert reasons["labs"].startswith("the client's prefetch query failed (OperationOutcome)")
    assert "no fhirServer" in reasons["labs"]
    assert reasons["cytokines"].startswith("not in prefetch")


def test_a_prefetch_value_that_is_no_resource_says_so_not_that_a_query_failed() -> None:
    """A list or a string where a resource belongs is a malformed value, and nothing else
    could be read: the 412 says what was wrong with it."""
    for value in ([{"resourceType": "Observation"}], "Observation?code=...", {"total": 0}):
        with pytest.raises(DataUnavailable) as caught:
            gather(access(), {"labs": value}, None)
        message = caught.value.message
        assert "labs: the client's prefetch value was not a FHIR resource" in message, message
        assert "OperationOutcome" not in message


def test_nothing_obtainable_without_fhir_server_is_data_unavailable() -> None:
    with pytest.raises(DataUnavailable) as caught:
        gather(access(), None, None)
    assert "no fhirServer" in caught.value.message
    assert [gap.key for gap in caught.value.gaps] == list(TEMPLATES)


def test_some_keys_without_fhir_server_give_gaps_not_an_error() -> None:
    got = gather(access(), {"patient": {"resourceType": "Patient", "id": DEMO}}, None)
    needed = [key for key in TEMPLATES if key != "patient"]
    assert [(gap.key, gap.partial) for gap in got.gaps] == [(key, False) for key in needed]
    assert {"cytokines", "labs", "vitals", "conditions", "allergies"} <= set(needed)
    assert identities(got.resources) == [("Patient", DEMO)]


def test_a_refused_server_matters_only_when_something_must_be_read(fhir_server: str) -> None:
    strict = access(fhir_allow_loopback=False)
    prefetch = client_prefetch(fhir_server, TEMPLATES, DEMO)
    assert gather(strict, prefetch, "https://ehr.invalid/fhir").gaps == []
    # A refused server is a gap per key: what prefetch gave is still used ...
    partly = {"patient": {"resourceType": "Patient", "id": DEMO}}
    got = gather(strict, partly, "https://ehr.invalid/fhir")
    assert identities(got.resources) == [("Patient", DEMO)]
    assert [gap.key for gap in got.gaps] == [key for key in TEMPLATES if key != "patient"]
    assert all("CYTOKINE_CDS_FHIR_ALLOWLIST" in gap.reason for gap in got.gaps)
    # ... and only when nothing at all could be had is the call refused.
    with pytest.raises(DataUnavailable) as caught:
        gather(strict, None, "https://ehr.invalid/fhir")
    assert caught.value.refused is not None
    assert caught.value.refused.setting == "CYTOKINE_CDS_FHIR_ALLOWLIST"


def test_anonymous_reads_can_be_switched_off(fhir_server: str) -> None:
    with pytest.raises(DataUnavailable) as caught:
        gather(access(fhir_allow_anonymous=False), None, fhir_server)
    assert "CYTOKINE_CDS_FHIR_ALLOW_ANONYMOUS" in caught.value.message
    # With a token the same server is read (sekmet accepts any token).
    assert gather(access(fhir_allow_anonymous=False), None, fhir_server, token="t").gaps == []


def test_a_template_the_context_cannot_fill_is_a_gap(fhir_server: str) -> None:
    templates = {**TEMPLATES, "encounter": "Encounter/{{context.encounterId}}"}
    got = gather(access(), None, fhir_server, templates=templates)
    assert [gap.key for gap in got.gaps] == ["encounter"]
    assert "context.encounterId" in got.gaps[0].reason


def test_a_partly_read_key_is_kept_and_marked_partial(fhir_server: str) -> None:
    paged = {**TEMPLATES, "labs": page_size(TEMPLATES["labs"], 1)}
    # One search per key: merged, the labs would share the others' page size and page limit.
    fhir = access(fhir_max_pages=2, fhir_merge_code_searches=False)
    got = gather(fhir, None, fhir_server, templates=paged)
    assert [(gap.key, gap.partial) for gap in got.gaps] == [("labs", True)]
    assert "CYTOKINE_CDS_FHIR_MAX_PAGES" in got.gaps[0].reason
    assert sum(r["resourceType"] == "Observation" for r in got.resources) == 4 + 2


def _empty_bundle() -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "total": 0}


# The service's split: the searches the rules need, and the Patient read for the age only.
NEEDED = {key: template for key, template in TEMPLATES.items() if key != "patient"}
OPTIONAL = {"patient": TEMPLATES["patient"]}


def gather_split(fhir: FhirAccess, prefetch: dict[str, Any] | None, server: str | None) -> Gathered:
    read = read_prefetch(prefetch, TEMPLATES)
    context = {"patientId": DEMO, "userId": "Practitioner/doc"}
    try:
        return fhir.gather(read, NEEDED, context, server, None, optional=OPTIONAL)
    finally:
        fhir.close()


def test_the_patient_is_read_for_its_age_when_prefetch_lacks_it(fhir_server: str) -> None:
    """Without the Patient the chart has no birth date: a child would be read as of unknown
    age, so the read is made, as for a search the rules need."""
    prefetch = client_prefetch(fhir_server, TEMPLATES, DEMO)
    del prefetch["patient"]
    got = gather_split(access(), prefetch, fhir_server)
    assert got.gaps == [] and got.fetched is not None and list(got.fetched.keys) == ["patient"]
    assert ("Patient", DEMO) in identities(got.resources)


def test_a_patient_that_cannot_be_read_is_no_gap_and_answers_no_call(faults: FaultServer) -> None:
    """The searches prefetched, the Patient read failing: an answer with no gap; the Patient
    prefetched and every search failing: still nothing to judge (412)."""
    searches: dict[str, Any] = {key: _empty_bundle() for key in NEEDED}
    got = gather_split(access(), searches, faults.url("status-500"))
    assert got.gaps == [] and faults.paths("status-500") != []
    with pytest.raises(DataUnavailable) as caught:
        gather_split(access(), {"patient": {"resourceType": "Patient", "id": DEMO}}, None)
    assert [gap.key for gap in caught.value.gaps] == list(NEEDED)
