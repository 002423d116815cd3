"""One hook call, end to end: request -> lab evidence -> rules -> cards.

No HTTP here: the api layer validates the request and turns the outcome into a response.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cds_service.cards.build import DataGapText
from cds_service.cards.resources import OrderContext
from cds_service.errors import ApiError
from cds_service.evidence import DataProblem, Evidence, build_evidence
from cds_service.fhir.draft_orders import medication_orders
from cds_service.fhir.gather import DataUnavailable, Gathered
from cds_service.fhir.prefetch import read_prefetch
from cds_service.fhir.server_policy import ServerRefused
from cds_service.hooks.request import (
    HookRequest,
    OrderSelectContext,
    OrderSignContext,
    PatientViewContext,
)
from cds_service.hooks.response import CdsResponse
from cds_service.hooks.services import ServiceSpec
from cds_service.profile.links import ProfileLink, card_link, issue_link
from cds_service.profile.snapshot import profile_record
from cds_service.rules.assessment import Assessment
from cds_service.rules.engine import assess
from cds_service.rules.orders import judge_orders
from cds_service.runtime import Runtime
from cds_service.store import ClientIdentity, EvidenceEntry, HookCallRecord, ProfileRecord

_PATIENT_SCOPED = ("Observation", "DiagnosticReport")


@dataclass(frozen=True)
class HookOutcome:
    response: CdsResponse
    assessment: Assessment
    evidence: Evidence
    profile: ProfileLink | None = None  # the profile page the cards link to (issue 7)


def answer_hook(
    runtime: Runtime,
    service: ServiceSpec,
    request: HookRequest,
    context: PatientViewContext,
    now: datetime | None = None,
    link_base: str | None = None,
) -> HookOutcome:
    """`link_base`: base URL of the profile page links; None puts no links on the cards."""
    now = now or datetime.now(UTC)
    gathered = gather_data(runtime, service, request)
    resources, foreign = for_patient(gathered.resources, context.patientId)
    evidence = build_evidence(resources, runtime.catalog, now)
    if foreign:
        evidence = _with_problems(evidence, foreign)
    assessment = assess(evidence, runtime.rules)
    # --- cytokine profile page (issue 7): the cards link to a chart of this assessment ---
    profile = issue_link(runtime.profile_links, assessment, link_base)
    links = [card_link(profile)] if profile else []
    order_context = OrderContext(
        patient_id=context.patientId,
        encounter_id=context.encounterId,
        user_id=context.userId,
        now=now,
    )
    builder = runtime.cards
    if isinstance(context, OrderSignContext):
        selected = None
        if isinstance(context, OrderSelectContext):
            selected = frozenset(context.selections)
        orders = medication_orders(context.draftOrders, only=selected)
        findings = judge_orders(orders, assessment, runtime.rules)
        cards = builder.for_orders(findings, assessment, order_context, links)
    else:
        cards = builder.for_patient(assessment, order_context, links)
    if gathered.gaps:
        gaps = [DataGapText(gap.key, gap.reason, gap.partial) for gap in gathered.gaps]
        cards.append(builder.data_incomplete(gaps))
    if profile is not None and not any(card.links for card in cards):
        profile = None  # no card carries the link: nothing to store
    return HookOutcome(CdsResponse(cards=cards), assessment, evidence, profile)


def gather_data(runtime: Runtime, service: ServiceSpec, request: HookRequest) -> Gathered:
    """Prefetch plus what the FHIR server gives for the rest; 400 / 412 when that cannot be."""
    prefetch = read_prefetch(request.prefetch, service.prefetch)
    auth = request.fhirAuthorization
    token = auth.access_token.get_secret_value() if auth is not None else None
    try:
        return runtime.fhir.gather(
            prefetch, service.needed, request.context, request.fhirServer, token
        )
    except ServerRefused as exc:
        raise ApiError(400, exc.message, field="fhirServer") from None
    except DataUnavailable as exc:
        raise ApiError(412, exc.message) from None


def for_patient(
    resources: Iterable[dict[str, Any]], patient_id: str
) -> tuple[list[dict[str, Any]], list[DataProblem]]:
    """Keep results of this patient; a result that names another patient is left out, loudly.

    A prefetch or FHIR search is scoped to the patient, so another subject means a client or
    server fault; using that result could attach someone else's labs to this chart.
    """
    kept: list[dict[str, Any]] = []
    foreign: list[DataProblem] = []
    for resource in resources:
        subject = resource.get("subject")
        reference = subject.get("reference") if isinstance(subject, dict) else None
        if (
            resource.get("resourceType") in _PATIENT_SCOPED
            and isinstance(reference, str)
            and _names_other_patient(reference, patient_id)
        ):
            resource_id = resource.get("id")
            foreign.append(
                DataProblem(
                    code="other-patient",
                    reason="The result belongs to another patient and was not used.",
                    reference=f"{resource.get('resourceType')}/{resource_id}",
                )
            )
            continue
        kept.append(resource)
    return kept, foreign


_PATIENT_REFERENCE = re.compile(r"(?:^|/)Patient/([^/]+)(?:/_history/[^/]+)?$")


def _names_other_patient(reference: str, patient_id: str) -> bool:
    """True for a Patient reference (relative or absolute) to someone else.

    Other forms (urn:uuid in a transaction Bundle, a contained "#id") cannot be checked here and
    are kept.
    """
    match = _PATIENT_REFERENCE.search(reference)
    return match is not None and match.group(1) != patient_id


def _with_problems(evidence: Evidence, problems: list[DataProblem]) -> Evidence:
    return evidence.model_copy(update={"problems": (*evidence.problems, *problems)})


class BundleError(ValueError):
    """A Bundle handed to `evaluate_bundle` cannot be evaluated; the message says why."""


def evaluate_bundle(
    runtime: Runtime, bundle: Any, as_of: datetime | None = None
) -> tuple[HookOutcome, str]:
    """Assess a patient Bundle outside a hook call (integration engines, the CLI).

    Returns the outcome (patient-view cards) and the patient id the Bundle is about.
    """
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise BundleError("expected a FHIR Bundle (resourceType 'Bundle')")
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        raise BundleError("the Bundle has no entry list")
    resources = [
        e["resource"]
        for e in entries
        if isinstance(e, dict) and isinstance(e.get("resource"), dict)
    ]
    patient_id = _patient_of(resources)
    service = next(s for s in runtime.services.values() if s.hook == "patient-view")
    context = PatientViewContext(userId="Device/cytokine-cds", patientId=patient_id)
    # The whole Bundle stands in for every prefetch key (duplicates are merged when read).
    searchset = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
    request = HookRequest(
        hook="patient-view",
        hookInstance=f"evaluate-{uuid.uuid4()}",
        context=context.model_dump(),
        prefetch=dict.fromkeys(service.prefetch, searchset),
    )
    return answer_hook(runtime, service, request, context, as_of), patient_id


def _patient_of(resources: list[dict[str, Any]]) -> str:
    patients: set[str] = {
        r["id"]
        for r in resources
        if r.get("resourceType") == "Patient" and isinstance(r.get("id"), str)
    }
    if not patients:
        for resource in resources:
            subject = resource.get("subject")
            reference = subject.get("reference") if isinstance(subject, dict) else None
            if isinstance(reference, str) and "Patient/" in reference:
                patients.add(reference.rsplit("Patient/", 1)[1])
    if len(patients) != 1:
        found = "no patient" if not patients else f"{len(patients)} patients"
        raise BundleError(f"the Bundle must be about one patient (found {found})")
    return patients.pop()


def evaluation_report(outcome: HookOutcome) -> dict[str, Any]:
    """The JSON an integration engine receives: the assessment, data problems and the cards."""
    return {
        "assessment": outcome.assessment.model_dump(mode="json"),
        "problems": [p.model_dump(mode="json") for p in outcome.evidence.problems],
        "cards": outcome.response.to_json()["cards"],
    }


# --- audit trail -----------------------------------------------------------------------------


def record_answer(
    runtime: Runtime,
    service: ServiceSpec,
    request: HookRequest,
    context: PatientViewContext,
    outcome: HookOutcome,
    *,
    client: ClientIdentity | None = None,
) -> None:
    """Record an answer that has cards in the audit trail. Never raises: see AuditStore."""
    store = runtime.store
    if store is None or not outcome.response.cards:
        return
    keyer = store.patient_key
    store.record_hook_call(
        HookCallRecord.for_cards(
            outcome.response.cards,
            hook_instance=request.hookInstance,
            service_id=service.id,
            hook=request.hook,
            client=client,
            patient_key=keyer(context.patientId) if keyer else None,
            rules_version=outcome.assessment.rules_version,
            evidence=evidence_summary(outcome.assessment),
            profile=_profile_record(runtime, outcome),
        )
    )


def _profile_record(runtime: Runtime, outcome: HookOutcome) -> ProfileRecord | None:
    """Cytokine profile page (issue 7): the page's data, stored with the audit row."""
    if outcome.profile is None:
        return None
    return profile_record(
        outcome.profile.assessment_id,
        outcome.assessment,
        outcome.evidence,
        runtime.rules,
        runtime.catalog,
    )


def evidence_summary(assessment: Assessment) -> list[EvidenceEntry]:
    """The values the assessment used (one per analyte and result), for the audit row.

    Resource ids are left out: some EHRs build them from record numbers, and the audit row
    must not identify the patient.
    """
    entries: dict[tuple[str, str], EvidenceEntry] = {}
    for marker in assessment.values_used():
        value = marker.value
        assert value is not None
        entries.setdefault(
            (value.analyte, value.source),
            EvidenceEntry(
                analyte=value.analyte,
                value=value.value,
                unit=value.unit,
                comparator=value.comparator,
                effective=value.effective.isoformat(),
            ),
        )
    return list(entries.values())
