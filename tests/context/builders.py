"""Small FHIR resource builders for the chart-context tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
PCS = "http://www.cms.gov/Medicare/Coding/ICD10"
CPT = "http://www.ama-assn.org/go/cpt"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
RXNORM_OID = "urn:oid:2.16.840.1.113883.6.88"
LOINC = "http://loinc.org"
_counter = iter(range(1, 10_000))


def _id(prefix: str) -> str:
    return f"{prefix}{next(_counter)}"


def status(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def condition(
    system: str,
    code: str,
    *,
    onset: str | None = "2026-11-28",
    clinical: str | None = "active",
    verification: str | None = "confirmed",
    **extra: Any,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": _id("c"),
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": "Patient/p1"},
    }
    if clinical:
        resource["clinicalStatus"] = status(
            "http://terminology.hl7.org/CodeSystem/condition-clinical", clinical
        )
    if verification:
        resource["verificationStatus"] = status(
            "http://terminology.hl7.org/CodeSystem/condition-ver-status", verification
        )
    if onset:
        resource["onsetDateTime"] = onset
    resource.update(extra)
    return resource


def procedure(system: str, code: str, performed: str | None, **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": _id("pr"),
        "status": "completed",
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": "Patient/p1"},
    }
    if performed:
        resource["performedDateTime"] = performed
    resource.update(extra)
    return resource


def med(
    kind: str,
    medication: dict[str, Any],
    when: str | None = "2026-11-30T08:00:00Z",
    status_: str | None = None,
    dose: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": kind, "id": _id("m"), **medication}
    if kind == "MedicationAdministration":
        resource["status"] = status_ or "completed"
        if when:
            resource["effectiveDateTime"] = when
        if dose:
            resource["dosage"] = {"dose": dose}
    elif kind == "MedicationRequest":
        resource["status"] = status_ or "active"
        resource["intent"] = "order"
        if when:
            resource["authoredOn"] = when
        if dose:
            resource["dosageInstruction"] = [{"doseAndRate": [{"doseQuantity": dose}]}]
    else:
        resource["status"] = status_ or "active"
        if when:
            resource["effectiveDateTime"] = when
        if dose:
            resource["dosage"] = [{"doseAndRate": [{"doseQuantity": dose}]}]
    resource.update(extra)
    return resource


def rx(code: str, system: str = RXNORM, display: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"medicationCodeableConcept": {"coding": [coding]}}


def text(name: str) -> dict[str, Any]:
    return {"medicationCodeableConcept": {"text": name}}


def observation(
    code: str, when: str = "2026-11-30T10:00:00Z", system: str = LOINC, **value: Any
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": _id("o"),
        "status": "final",
        "code": {"coding": [{"system": system, "code": code}]},
        "effectiveDateTime": when,
        **value,
    }


def allergy(code: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"resourceType": "AllergyIntolerance", "id": _id("a"), "code": code, **extra}
