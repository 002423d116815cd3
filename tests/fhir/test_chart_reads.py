"""The chart around the labs, read from the real FHIR test server (sekmet) through the gather path:
every chart template is a search the server accepts, and what prefetch did not bring is read."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from cds_service.composition import fhir_access
from cds_service.context import load_context_catalog, read_chart
from cds_service.fhir.prefetch import read_prefetch
from cds_service.settings import Settings
from tests.fhir_server import client_prefetch

from .test_gather import TEMPLATES

PATIENT = "chart-reads-car-t"
NOW = datetime.now(UTC).replace(microsecond=0)
CHART_KEYS = [
    "procedures",
    "conditions",
    "medicationAdministrations",
    "medicationRequests",
    "medicationStatements",
    "allergies",
    "vitals",
    "weight",
]
UCUM_SYSTEM = "http://unitsofmeasure.org"


def _at(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat()


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "fullUrl": f"urn:uuid:{uuid.uuid4()}",
        "resource": resource,
        "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"},
    }


def _chart() -> list[dict[str, Any]]:
    subject = {"reference": f"Patient/{PATIENT}"}
    rx = "http://www.nlm.nih.gov/research/umls/rxnorm"
    return [
        {"resourceType": "Patient", "id": PATIENT},
        {
            "resourceType": "Procedure",
            "id": f"{PATIENT}-infusion",
            "status": "completed",
            "subject": subject,
            "code": {
                "coding": [
                    {"system": "http://www.cms.gov/Medicare/Coding/ICD10", "code": "XW033H7"}
                ]
            },
            "performedDateTime": _at(3),
        },
        {
            "resourceType": "Procedure",
            "id": f"{PATIENT}-other",  # not a CAR-T code: not asked for
            "status": "completed",
            "subject": subject,
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "80146002"}]},
            "performedDateTime": _at(10),
        },
        {
            "resourceType": "Condition",
            "id": f"{PATIENT}-dlbcl",
            "subject": subject,
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "code": {"text": "Diffuse large B-cell lymphoma"},
        },
        {
            "resourceType": "MedicationAdministration",
            "id": f"{PATIENT}-toci",
            "status": "completed",
            "subject": subject,
            "medicationCodeableConcept": {"coding": [{"system": rx, "code": "612865"}]},
            "effectiveDateTime": _at(1),
        },
        {
            "resourceType": "MedicationAdministration",
            "id": f"{PATIENT}-norepi",
            "status": "in-progress",
            "subject": subject,
            "medicationCodeableConcept": {"text": "norepinephrine 4 mg in 250 mL"},
            "effectivePeriod": {"start": _at(0.1)},
        },
        {
            "resourceType": "MedicationRequest",
            "id": f"{PATIENT}-dexa",
            "status": "active",
            "intent": "order",
            "subject": subject,
            "medicationCodeableConcept": {"coding": [{"system": rx, "code": "3264"}]},
            "authoredOn": _at(0.2),
        },
        {
            "resourceType": "MedicationRequest",
            "id": f"{PATIENT}-stopped",
            "status": "stopped",
            "intent": "order",
            "subject": subject,
            "medicationCodeableConcept": {"coding": [{"system": rx, "code": "72435"}]},
            "authoredOn": _at(2),
        },
        {
            "resourceType": "AllergyIntolerance",
            "id": f"{PATIENT}-allergy",
            "patient": subject,
            "code": {"text": "Anakinra"},
        },
        {
            "resourceType": "Observation",
            "id": f"{PATIENT}-o2",
            "status": "final",
            "subject": subject,
            "code": {"coding": [{"system": "http://loinc.org", "code": "3151-8"}]},
            "effectiveDateTime": _at(0.05),
            "valueQuantity": {"value": 10, "unit": "L/min"},
        },
        {
            "resourceType": "Observation",
            "id": f"{PATIENT}-weight",
            "status": "final",
            "subject": subject,
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
            "effectiveDateTime": _at(2),
            "valueQuantity": {"value": 72.5, "unit": "kg", "system": UCUM_SYSTEM, "code": "kg"},
        },
    ]


@pytest.fixture(scope="module")
def chart_server(fhir_server: str) -> str:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [_entry(r) for r in _chart()],
    }
    response = requests.post(
        fhir_server,
        data=json.dumps(bundle),
        headers={"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"},
        timeout=30,
    )
    assert response.status_code == 200, response.text[:500]
    return fhir_server


def test_every_chart_template_is_a_search_the_server_answers(chart_server: str) -> None:
    # client_prefetch raises on any non-2xx answer: each template is valid for a real server
    prefetch = client_prefetch(chart_server, TEMPLATES, PATIENT)
    found = {
        key: sorted(e["resource"]["id"] for e in prefetch[key].get("entry", []))
        for key in CHART_KEYS
    }
    assert found["procedures"] == [f"{PATIENT}-infusion"]  # asked by code
    assert found["medicationRequests"] == [f"{PATIENT}-dexa"]  # active orders only
    assert found["allergies"] == [f"{PATIENT}-allergy"]
    assert found["vitals"] == [f"{PATIENT}-o2"]
    assert found["weight"] == [f"{PATIENT}-weight"]  # its own search, newest first
    assert len(found["medicationAdministrations"]) == 2


def test_what_prefetch_did_not_bring_is_read_from_the_fhir_server(chart_server: str) -> None:
    labs_only = {key: None for key in ("patient", "cytokines", "labs")}
    read = read_prefetch(labs_only, TEMPLATES)
    access = fhir_access(Settings(fhir_allow_loopback=True))
    try:
        templates = {k: v for k, v in TEMPLATES.items() if k != "patient"}
        gathered = access.gather(read, templates, {"patientId": PATIENT}, chart_server, None)
    finally:
        access.close()
    assert gathered.gaps == []
    assert gathered.fetched is not None and set(gathered.fetched.keys) == set(CHART_KEYS)
    chart = read_chart(gathered.resources, load_context_catalog(), NOW)
    (car_t,) = chart.findings("iec")
    assert (car_t.kind, car_t.product, car_t.day) == ("car-t", "axicabtagene ciloleucel", 3)
    assert [d.drug for d in chart.given("tocilizumab")] == ["tocilizumab"]
    assert [v.drug for v in chart.vasopressors] == ["norepinephrine"]
    assert [d.drug for d in chart.drugs if d.source == "order"] == ["dexamethasone"]
    assert chart.allergies == ("anakinra",)
    assert chart.oxygen is not None and chart.oxygen.level == "high-flow"
