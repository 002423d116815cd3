"""POST /cds-services/{id}: a hook call."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask import Blueprint, g, request

from cds_service.api.client import calling_client
from cds_service.api.http import json_body, validate
from cds_service.api.observe import note_hook_call
from cds_service.errors import ApiError
from cds_service.hooks.client_shapes import shape_cards
from cds_service.hooks.request import HookRequest, PatientViewContext
from cds_service.hooks.services import ServiceSpec
from cds_service.pipeline import answer_hook, record_answer
from cds_service.runtime import current_runtime

bp = Blueprint("hooks", __name__)


def service_or_404(service_id: str) -> ServiceSpec:
    service = current_runtime().services.get(service_id)
    if service is None:
        known = ", ".join(sorted(current_runtime().services))
        raise ApiError(404, f"No CDS service with id '{service_id}'. Known services: {known}.")
    return service


@bp.post("/cds-services/<service_id>")
def call_service(service_id: str) -> dict[str, Any]:
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
    # Profile page links (issue 7) are built on the configured public URL, else this request's.
    link_base = runtime.settings.public_base_url or request.host_url.rstrip("/")
    outcome = answer_hook(runtime, service, hook_request, context, link_base=link_base)
    verified = g.get("cds_client")
    if verified is not None:  # a client whose trusted-clients entry asks for another card shape
        cards = shape_cards(outcome.response.cards, verified.cards)
        outcome = replace(outcome, response=outcome.response.model_copy(update={"cards": cards}))
    note_hook_call(hook_request.hookInstance, outcome.response.cards)  # request log, metrics
    # Audit trail: answers with cards are recorded; a store outage never fails the call.
    record_answer(runtime, service, hook_request, context, outcome, client=calling_client())
    return outcome.response.to_json()
