"""POST /cds-services/{id}: a hook call — read the data, decide, record, answer."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, g

from cds_service.api.client import calling_client
from cds_service.api.errors import ApiError
from cds_service.api.http import json_body, validate
from cds_service.api.observe import note_hook_call
from cds_service.decision import Decision, HookContext, LinkIssuer, decide
from cds_service.gathering import DataUnavailable, ServerRefused, gather_record
from cds_service.hooks.client_shapes import shape_cards
from cds_service.hooks.request import (
    HookRequest,
    OrderSelectContext,
    OrderSignContext,
    PatientViewContext,
    ehr_trigger,
)
from cds_service.hooks.response import CdsResponse
from cds_service.hooks.services import ServiceSpec
from cds_service.profile.links import ProfileLink, issue_link
from cds_service.recording import record_decision
from cds_service.rules.assessment import Assessment
from cds_service.runtime import Runtime, current_runtime
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
    context = validate(service.context_model, hook_request.context, prefix="context.")
    assert isinstance(context, PatientViewContext)  # every hook's context extends it
    runtime = current_runtime()
    try:
        record = gather_record(runtime.fhir, service, hook_request, started=started)
    except ServerRefused as exc:
        raise ApiError(400, exc.message, field="fhirServer") from None
    except DataUnavailable as exc:
        raise ApiError(412, exc.message) from None
    hook_context = _hook_context(service.hook, context)
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


def _hook_context(hook: str, context: PatientViewContext) -> HookContext:
    draft_orders = context.draftOrders if isinstance(context, OrderSignContext) else None
    selections = frozenset(context.selections) if isinstance(context, OrderSelectContext) else None
    return HookContext(
        hook=hook,
        patient_id=context.patientId,
        encounter_id=context.encounterId,
        user_id=context.userId,
        draft_orders=draft_orders,
        selections=selections,
    )


def _profile_links(runtime: Runtime) -> LinkIssuer | None:
    """Profile page links on the configured public URL (else the address served on), never on
    the request's Host header, which the caller controls."""
    links = runtime.profile_links
    if links is None:
        return None
    settings = runtime.settings
    base = settings.public_base_url or f"http://{settings.host}:{settings.port}"

    def issue(assessment: Assessment) -> ProfileLink | None:
        return issue_link(links, assessment, base)

    return issue


def _response(decision: Decision) -> dict[str, Any]:
    return CdsResponse(cards=decision.cards).to_json()
