"""One hook call, end to end: request -> lab evidence -> rules -> cards."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from cds_service.hooks.request import HookRequest
from cds_service.hooks.response import CdsResponse
from cds_service.hooks.services import ServiceSpec
from cds_service.runtime import Runtime
from cds_service.store import ClientIdentity, EvidenceEntry, HookCallRecord


def answer_hook(
    runtime: Runtime, service: ServiceSpec, request: HookRequest, context: BaseModel
) -> CdsResponse:
    # The subtype engine is not wired in yet: nothing to say is an empty card list.
    return CdsResponse(cards=[])


# --- audit trail (issue 5: cds_service/store) ------------------------------------------------
def record_answer(
    runtime: Runtime,
    service: ServiceSpec,
    request: HookRequest,
    context: BaseModel,
    response: CdsResponse,
    *,
    client: ClientIdentity | None = None,
    evidence: Sequence[EvidenceEntry] = (),
    rules_version: str | None = None,
) -> None:
    """Record an answer that has cards in the audit trail. Never raises: see AuditStore."""
    store = runtime.store
    if store is None or not response.cards:
        return
    patient_id = getattr(context, "patientId", None)
    keyer = store.patient_key
    store.record_hook_call(
        HookCallRecord.for_cards(
            response.cards,
            hook_instance=request.hookInstance,
            service_id=service.id,
            hook=request.hook,
            client=client,
            patient_key=keyer(patient_id) if keyer and patient_id else None,
            rules_version=rules_version,
            evidence=evidence,
        )
    )
