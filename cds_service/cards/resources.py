"""The FHIR resources our suggestions create: strict R4, built with fhir.resources R4B models."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir.resources.R4B.annotation import Annotation
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.dosage import Dosage
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.servicerequest import ServiceRequest

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
_REQUESTER_TYPES = ("Practitioner/", "PractitionerRole/")


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
        "subject": Reference(reference=f"Patient/{ctx.patient_id}"),
        "authoredOn": ctx.now,
    }
    if ctx.encounter_id:
        fields["encounter"] = Reference(reference=f"Encounter/{ctx.encounter_id}")
    if ctx.user_id and ctx.user_id.startswith(_REQUESTER_TYPES):
        fields["requester"] = Reference(reference=ctx.user_id)
    return fields


def medication_request(
    rxnorm: str, name: str, why: str, ctx: OrderContext, orderable: PanelCode | None = None
) -> dict[str, Any]:
    """`orderable`: the hospital's own code for the drug (e.g. an Epic preference-list item),
    sent beside the RxNorm ingredient so the EHR picks its orderable."""
    codings = [Coding(system=RXNORM, code=rxnorm, display=name)]
    if orderable is not None:
        codings.append(
            Coding(system=orderable.system, code=orderable.code, display=orderable.display)
        )
    resource = MedicationRequest(
        **_common(ctx),
        medicationCodeableConcept=CodeableConcept(coding=codings, text=name),
        # Dosing is the prescriber's decision; the suggestion only names the drug.
        dosageInstruction=[Dosage(text="Dose, route and frequency to be set by the prescriber.")],
        note=[Annotation(text=why)],
    )
    return resource.model_dump(mode="json", exclude_none=True)


def panel_request(panel: PanelCode, why: str, ctx: OrderContext) -> dict[str, Any]:
    resource = ServiceRequest(
        **_common(ctx),
        category=[
            CodeableConcept(
                coding=[Coding(system=SNOMED, code="108252007", display="Laboratory procedure")]
            )
        ],
        code=CodeableConcept(
            coding=[Coding(system=panel.system, code=panel.code, display=panel.display)],
            text=panel.display,
        ),
        note=[Annotation(text=why)],
    )
    return resource.model_dump(mode="json", exclude_none=True)
