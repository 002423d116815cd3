"""The FHIR resources our suggestions create: strict R4 (checked with fhir.resources R4B models)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.servicerequest import ServiceRequest

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
# The requester of a suggested order: a user of one of these types with a valid FHIR id;
# any other userId is left out, since the suggestion must be valid FHIR R4.
_REQUESTER = re.compile(r"(?:Practitioner|PractitionerRole)/[A-Za-z0-9\-.]{1,64}")


@dataclass(frozen=True)
class OrderContext:
    """Who and what a suggested order is for (from the hook context)."""

    patient_id: str
    encounter_id: str | None
    user_id: str | None
    now: datetime


@dataclass(frozen=True)
class PanelCode:
    system: str
    code: str
    display: str


def _common(ctx: OrderContext) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "status": "draft",
        "intent": "proposal",
        "subject": {"reference": f"Patient/{ctx.patient_id}"},
    }
    if ctx.encounter_id:
        fields["encounter"] = {"reference": f"Encounter/{ctx.encounter_id}"}
    fields["authoredOn"] = _instant(ctx.now)
    if ctx.user_id and _REQUESTER.fullmatch(ctx.user_id):
        fields["requester"] = {"reference": ctx.user_id}
    return fields


def _instant(moment: datetime) -> str:
    """A FHIR dateTime as fhir.resources writes it: UTC with a Z."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# The resources are built as JSON directly, in the form fhir.resources' R4B models dump them:
# building and dumping the models cost ~0.25 ms per suggestion on the hot path. That they stay
# valid R4 is checked at start-up (check_resources, run by check_kit) and by the tests, which
# compare these dicts with the models' output.
def medication_request(
    rxnorm: str, name: str, why: str, ctx: OrderContext, orderable: PanelCode | None = None
) -> dict[str, Any]:
    """`orderable`: the hospital's own code for the drug (e.g. an Epic preference-list item),
    sent beside the RxNorm ingredient so the EHR picks its orderable."""
    common = _common(ctx)
    codings = [{"system": RXNORM, "code": rxnorm, "display": name}]
    if orderable is not None:
        codings.append(
            {"system": orderable.system, "code": orderable.code, "display": orderable.display}
        )
    return {
        "resourceType": "MedicationRequest",
        "status": common.pop("status"),
        "intent": common.pop("intent"),
        "medicationCodeableConcept": {
            "coding": codings,
            "text": name,
        },
        **common,
        "note": [{"text": why}],
        # Dosing is the prescriber's decision; the suggestion only names the drug.
        "dosageInstruction": [{"text": "Dose, route and frequency to be set by the prescriber."}],
    }


def panel_request(panel: PanelCode, why: str, ctx: OrderContext) -> dict[str, Any]:
    common = _common(ctx)
    return {
        "resourceType": "ServiceRequest",
        "status": common.pop("status"),
        "intent": common.pop("intent"),
        "category": [
            {"coding": [{"system": SNOMED, "code": "108252007", "display": "Laboratory procedure"}]}
        ],
        "code": {
            "coding": [{"system": panel.system, "code": panel.code, "display": panel.display}],
            "text": panel.display,
        },
        **common,
        "note": [{"text": why}],
    }


def check_resources(resources: list[dict[str, Any]]) -> None:
    """Each resource is valid R4 (fhir.resources R4B) and exactly what its model dumps.

    Raises pydantic's ValidationError, or ValueError naming the first difference."""
    for resource in resources:
        kind = resource["resourceType"]
        model = (
            MedicationRequest.model_validate(resource)
            if kind == "MedicationRequest"
            else ServiceRequest.model_validate(resource)
        )
        dumped = model.model_dump(mode="json", exclude_none=True)
        if dumped != resource:
            raise ValueError(f"suggested {resource['resourceType']} differs from R4: {dumped}")
