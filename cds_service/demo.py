"""Compose a CDS Hooks request from a patient Bundle, as an EHR would send it (for demos and tests).

The fixture patients are dated around FIXTURE_TIME; cytokine results older than 48 h are stale,
so a request replayed days later would only ask for a multiplex assay. `hook_request` can shift
every date so that the results are as old, relative to now, as they were at FIXTURE_TIME.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from cds_service.evidence.bundles import entry_resources
from cds_service.evidence.times import parse_fhir_datetime
from cds_service.hooks.services import ServiceSpec

FIXTURE_TIME = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
_DATE_KEYS = frozenset(
    {
        "effectiveDateTime", "effectiveInstant", "issued", "start", "end", "authoredOn",
        "lastUpdated", "onsetDateTime", "abatementDateTime", "recordedDate", "performedDateTime",
        "occurrenceDateTime", "dateAsserted",
    }
)  # fmt: skip


def shift_dates(resource: Any, delta: timedelta) -> Any:
    """A copy of `resource` with every date-time (not plain dates) moved by `delta`."""
    shifted = copy.deepcopy(resource)
    for holder, key in _date_fields(shifted):
        moment = parse_fhir_datetime(holder[key])
        if moment is not None and "T" in holder[key]:
            holder[key] = (moment + delta).isoformat().replace("+00:00", "Z")
    return shifted


def _date_fields(value: Any) -> Iterator[tuple[dict[str, Any], str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in _DATE_KEYS and isinstance(item, str):
                yield value, key
            else:
                yield from _date_fields(item)
    elif isinstance(value, list):
        for item in value:
            yield from _date_fields(item)


def hook_request(
    service: ServiceSpec,
    patient_bundle: Mapping[str, Any],
    *,
    draft_orders: Mapping[str, Any] | None = None,
    now: datetime | None = None,
    prefetch: bool = True,
    fhir_server: str | None = None,
) -> dict[str, Any]:
    """A hook request for the Bundle's patient. With `now`, dates move from FIXTURE_TIME to now."""
    resources = entry_resources(patient_bundle)
    if now is not None:
        resources = shift_dates(resources, now - FIXTURE_TIME)
    patient = next((r for r in resources if r.get("resourceType") == "Patient"), None)
    if patient is None or not isinstance(patient.get("id"), str):
        raise ValueError("the Bundle holds no Patient with an id")
    context: dict[str, Any] = {"userId": "Practitioner/example", "patientId": patient["id"]}
    if service.hook in ("order-select", "order-sign"):
        orders = copy.deepcopy(dict(draft_orders or {"resourceType": "Bundle", "entry": []}))
        for resource in entry_resources(orders):
            resource["subject"] = {"reference": f"Patient/{patient['id']}"}
        context["draftOrders"] = orders
        if service.hook == "order-select":
            context["selections"] = [
                f"{r['resourceType']}/{r['id']}" for r in entry_resources(orders) if r.get("id")
            ]
    request: dict[str, Any] = {
        "hookInstance": str(uuid.uuid4()),
        "hook": service.hook,
        "context": context,
    }
    if fhir_server:
        request["fhirServer"] = fhir_server
    if prefetch:
        request["prefetch"] = {
            key: _run_template(template, patient, resources)
            for key, template in service.prefetch.items()
        }
    return request


def _run_template(
    template: str, patient: dict[str, Any], resources: list[dict[str, Any]]
) -> dict[str, Any]:
    """What a FHIR server would answer to one of our prefetch templates, on these resources."""
    if template.startswith("Patient/"):
        return patient
    resource_type, _, query = template.partition("?")
    params = dict(parse_qsl(query))
    wanted = {
        tuple(token.split("|", 1))
        for token in (params.get("code") or params.get("combo-code", "")).split(",")
        if token
    }
    if resource_type != "Observation":
        # A search for the chart around the labs: every such resource (of the codes asked for).
        found = [
            r
            for r in resources
            if r.get("resourceType") == resource_type
            and (not wanted or _codings(r.get("code")) & wanted)
        ]
        return _searchset(resource_type, found)
    with_components = "combo-code" in params

    def codes(resource: dict[str, Any]) -> set[tuple[str, str]]:
        concepts = [resource.get("code") or {}]
        if with_components:
            concepts += [c.get("code") or {} for c in resource.get("component") or []]
        return {(c.get("system"), c.get("code")) for cc in concepts for c in cc.get("coding", [])}

    def when(resource: dict[str, Any]) -> datetime:
        raw = resource.get("effectiveDateTime") or resource.get("issued")
        return parse_fhir_datetime(raw) or datetime.min.replace(tzinfo=UTC)

    matches = [r for r in resources if r.get("resourceType") == "Observation" and codes(r) & wanted]
    matches.sort(key=when, reverse=True)
    return _searchset("Observation", matches[: int(params.get("_count", "100"))])


def _codings(concept: object) -> set[tuple[object, object]]:
    codings = concept.get("coding") if isinstance(concept, dict) else None
    return {(c.get("system"), c.get("code")) for c in codings or [] if isinstance(c, dict)}


def _searchset(resource_type: str, found: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(found),
        "entry": [
            {"fullUrl": f"{resource_type}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in found
        ],
    }
