"""POST /cds-services/{id}: a hook call — read the data, decide, record, answer."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, g
from pydantic import ValidationError

from cds_service.api.client import calling_client
from cds_service.api.errors import ApiError
from cds_service.api.http import json_body, validate, validation_error
from cds_service.api.observe import note_hook_call
from cds_service.api.runtime import current_runtime
from cds_service.decision import Decision, LinkIssuer, decide
from cds_service.gathering import DataUnavailable, gather_record
from cds_service.hooks.client_shapes import shape_cards
from cds_service.hooks.request import HookRequest, ehr_trigger
from cds_service.hooks.response import CdsResponse
from cds_service.hooks.services import ServiceSpec
from cds_service.profile.links import ProfileLink, issue_link
from cds_service.recording import record_decision
from cds_service.runtime import Runtime
from cds_service.store import EhrTrigger

bp = Blueprint("hooks", __name__)


def service_or_404(service_id: str) -> ServiceSpec:
    service = current_runtime().services.get(service_id)
    if service is None:
        known = ", ".join(sorted(current_runtime().services))
        raise ApiError(404, f"No CDS service with id '{service_id}'. Known services: {known}.")
    return service


@bp.post("/cds-services/<service_id>")
def call_service(service_id: str) -> dict[str, Any]:
    started = time.monotonic()
    service = service_or_404(service_id)
    hook_request = validate(HookRequest, json_body())
    if hook_request.hook != service.hook:
        raise ApiError(
            400,
            f"Service '{service.id}' answers the '{service.hook}' hook, "
            f"but the request is for '{hook_request.hook}'.",
            field="hook",
        )
    try:
        hook_context = service.read_context(hook_request.context)
    except ValidationError as exc:
        raise validation_error(exc, prefix="context.") from None
    # The prefetch templates and FHIR searches are filled with the id as read, not as sent.
    context = {**hook_request.context, "patientId": hook_context.patient_id}
    hook_request = hook_request.model_copy(update={"context": context})
    runtime = current_runtime()
    try:
        record = gather_record(runtime.fhir, service, hook_request, started=started)
    except DataUnavailable as exc:
        field = "fhirServer" if exc.refused is not None else None
        raise ApiError(412, exc.message, field=field) from None
    decision = decide(
        runtime.knowledge,
        record,
        hook_context,
        datetime.now(UTC),
        links=_profile_links(runtime),
    )
    verified = g.get("cds_client")
    if verified is not None:  # a client whose trusted-clients entry asks for another card shape
        decision = replace(decision, cards=shape_cards(decision.cards, verified.cards))
    note_hook_call(hook_request.hookInstance, decision.cards)  # request log, metrics
    # Audit trail: answers with cards are recorded; a store outage never fails the call.
    record_decision(
        runtime.store,
        runtime.knowledge,
        decision,
        hook_instance=hook_request.hookInstance,
        service_id=service.id,
        hook=service.hook,
        patient_id=hook_context.patient_id,
        client=calling_client(),
        trigger=EhrTrigger(*ehr_trigger(hook_request)),
    )
    return _response(decision)


def _profile_links(runtime: Runtime) -> LinkIssuer | None:
    """Profile page links on the configured public URL (else the address served on), never on
    the request's Host header, which the caller controls."""
    links = runtime.profile_links
    if links is None:
        return None
    base = runtime.link_base

    def issue() -> ProfileLink | None:
        return issue_link(links, base)

    return issue


def _response(decision: Decision) -> dict[str, Any]:
    return CdsResponse(cards=decision.cards).to_json()
