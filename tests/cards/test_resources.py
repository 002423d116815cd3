"""The suggested resources are built as JSON; they must be what fhir.resources' R4 models emit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from fhir.resources.R4B.annotation import Annotation
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.dosage import Dosage
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.servicerequest import ServiceRequest

from cds_service.cards.resources import (
    RXNORM,
    SNOMED,
    OrderContext,
    PanelCode,
    check_resources,
    medication_request,
    panel_request,
)

CONTEXTS = [
    OrderContext("p-1", "e-1", "Practitioner/dr", datetime(2026, 1, 2, 3, 4, 5, 123456, UTC)),
    OrderContext("p-2", None, "PractitionerRole/r", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
    OrderContext("p.3", None, "Patient/self", datetime(2026, 6, 1, 0, 0, 0, 1, UTC)),
    OrderContext("p4", "", None, datetime(2026, 1, 2, 5, 4, tzinfo=timezone(timedelta(hours=2)))),
]


def _references(ctx: OrderContext) -> dict[str, object]:
    """What the models-based code passed for subject, encounter, authoredOn, requester."""
    fields: dict[str, object] = {
        "status": "draft",
        "intent": "proposal",
        "subject": Reference(reference=f"Patient/{ctx.patient_id}"),
        "authoredOn": ctx.now.astimezone(UTC),
    }
    if ctx.encounter_id:
        fields["encounter"] = Reference(reference=f"Encounter/{ctx.encounter_id}")
    if ctx.user_id in ("Practitioner/dr", "PractitionerRole/r"):  # the valid ones above
        fields["requester"] = Reference(reference=ctx.user_id)
    return fields


@pytest.mark.parametrize("ctx", CONTEXTS)
def test_medication_request_is_what_the_r4_model_emits(ctx: OrderContext) -> None:
    built = medication_request("612865", "tocilizumab", "Suggested: IL-6 pattern.", ctx)
    model = MedicationRequest(
        **_references(ctx),
        medicationCodeableConcept=CodeableConcept(
            coding=[Coding(system=RXNORM, code="612865", display="tocilizumab")],
            text="tocilizumab",
        ),
        dosageInstruction=[Dosage(text="Dose, route and frequency to be set by the prescriber.")],
        note=[Annotation(text="Suggested: IL-6 pattern.")],
    )
    assert built == model.model_dump(mode="json", exclude_none=True)
    check_resources([built])


@pytest.mark.parametrize("ctx", CONTEXTS)
def test_panel_request_is_what_the_r4_model_emits(ctx: OrderContext) -> None:
    panel = PanelCode("http://loinc.org", "90000-0", "Cytokine panel")
    built = panel_request(panel, "Suggested: no recent cytokines.", ctx)
    model = ServiceRequest(
        **_references(ctx),
        category=[
            CodeableConcept(
                coding=[Coding(system=SNOMED, code="108252007", display="Laboratory procedure")]
            )
        ],
        code=CodeableConcept(
            coding=[Coding(system=panel.system, code=panel.code, display=panel.display)],
            text=panel.display,
        ),
        note=[Annotation(text="Suggested: no recent cytokines.")],
    )
    assert built == model.model_dump(mode="json", exclude_none=True)
    check_resources([built])


def test_check_resources_refuses_what_r4_would_not_emit() -> None:
    ctx = CONTEXTS[0]
    broken = medication_request("612865", "tocilizumab", "why", ctx)
    broken["status"] = ""  # R4 forbids empty strings
    with pytest.raises(ValueError):
        check_resources([broken])
    unknown = medication_request("612865", "tocilizumab", "why", ctx)
    unknown["dosage"] = [{"text": "x"}]  # not an R4 element (dosageInstruction is)
    with pytest.raises(ValueError):
        check_resources([unknown])
    reshaped = medication_request("612865", "tocilizumab", "why", ctx)
    reshaped["authoredOn"] = "2026-01-02T03:04:05.123456+00:00"  # valid, but not as emitted
    with pytest.raises(ValueError, match="differs"):
        check_resources([reshaped])


@pytest.mark.parametrize(
    ("user_id", "requester"),
    [
        ("PractitionerRole/abc-1.2", True),
        ("Practitioner/", False),
        ("Practitioner/a b", False),
        ("Practitioner/" + "x" * 65, False),  # FHIR ids are at most 64 characters
        ("Patient/p1", False),
    ],
)
def test_the_requester_is_named_only_by_a_valid_practitioner_reference(
    user_id: str, requester: bool
) -> None:
    ctx = OrderContext("p1", "", user_id, datetime(2026, 12, 1, tzinfo=UTC))
    built = medication_request("612865", "tocilizumab", "Suggested.", ctx)
    assert ("requester" in built) == requester
