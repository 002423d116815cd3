"""Reading what one decision needs, before `decide`: prefetch and the client's FHIR server for a
hook call, or a Bundle handed over by an integration engine.

Failures are domain outcomes, not HTTP statuses: `DataUnavailable` (nothing could be read,
including because the fhirServer may not be contacted) and `BundleError` (the Bundle cannot mean
anything); the HTTP layer and the CLI say what each one means to their callers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from cds_service.decision import HookContext, PatientRecord
from cds_service.evidence.bundles import read_bundle, text_at, unread_pages_problem
from cds_service.evidence.models import ProblemCode
from cds_service.fhir.gather import DataUnavailable, FhirAccess
from cds_service.fhir.prefetch import read_prefetch
from cds_service.hooks.request import HookRequest
from cds_service.hooks.services import ServiceSpec

__all__ = [
    "EVALUATION_USER",
    "BundleError",
    "DataUnavailable",
    "evaluation_context",
    "gather_record",
    "record_from_bundle",
]


# Who asks when nobody in a chart does (POST /evaluate, the CLI, screening): a device.
EVALUATION_USER = "Device/cytokine-cds"


class BundleError(ValueError):
    """A Bundle handed over for evaluation cannot be evaluated; the message says why."""


def gather_record(
    access: FhirAccess,
    service: ServiceSpec,
    request: HookRequest,
    *,
    started: float | None = None,
) -> PatientRecord:
    """Prefetch plus what the FHIR server gives for the rest.

    Raises DataUnavailable. `started` (time.monotonic()) is when the call
    arrived: the FHIR deadline counts from it.
    """
    prefetch = read_prefetch(request.prefetch, service.prefetch)
    auth = request.fhirAuthorization
    token = auth.access_token.get_secret_value() if auth is not None else None
    gathered = access.gather(
        prefetch,
        service.needed,
        request.context,
        request.fhirServer,
        token,
        started=time.monotonic() if started is None else started,
        optional=service.optional,
    )
    # A first page that was continued from the FHIR server is no longer a problem; one that was
    # not is reported as a gap (partial), so the "first page only" note would say it twice.
    problems = tuple(p for p in prefetch.problems if p.code != ProblemCode.INCOMPLETE_BUNDLE)
    if gathered.fetched is not None:
        problems += tuple(gathered.fetched.problems)
    return PatientRecord(gathered.resources, problems=problems, gaps=tuple(gathered.gaps))


def record_from_bundle(bundle: Any) -> tuple[PatientRecord, str]:
    """The record of the one patient a Bundle (any type) is about, and that patient's id.

    OperationOutcome entries and malformed entries are data problems, not failures.
    """
    if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
        raise BundleError("expected a FHIR Bundle (resourceType 'Bundle')")
    if not isinstance(bundle.get("entry"), list):
        raise BundleError("the Bundle has no entry list")
    page = read_bundle(bundle, "Bundle")
    if page.next_url is not None:
        page.problems.insert(0, unread_pages_problem("Bundle"))
    patient_id = _patient_of(page.resources)
    return PatientRecord(page.resources, problems=tuple(page.problems)), patient_id


def evaluation_context(patient_id: str) -> HookContext:
    """The context of an evaluation outside a hook call: patient-view, by this service."""
    return HookContext(hook="patient-view", patient_id=patient_id, user_id=EVALUATION_USER)


def _patient_of(resources: list[dict[str, Any]]) -> str:
    patients: set[str] = {
        r["id"]
        for r in resources
        if r.get("resourceType") == "Patient" and isinstance(r.get("id"), str)
    }
    if not patients:
        for resource in resources:
            reference = text_at(resource, "subject", "reference")
            if reference is not None and "Patient/" in reference:
                patients.add(reference.rsplit("Patient/", 1)[1])
    if len(patients) != 1:
        found = "no patient" if not patients else f"{len(patients)} patients"
        raise BundleError(f"the Bundle must be about one patient (found {found})")
    return patients.pop()
