"""The one decision function: a patient's resources and the hook context in, cards out.

Pure: no Flask, no HTTP status, no I/O, no clock (the time of evaluation is an argument).
Hook calls, POST /evaluate, `cytokine-cds evaluate` and population screening all call `decide`;
reading the data (gathering) happens before it and recording (audit) after it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cds_service.cards.build import DataGapText
from cds_service.cards.resources import OrderContext
from cds_service.context import order_indication, read_chart
from cds_service.evidence import DataProblem, Evidence, build_evidence
from cds_service.evidence.bundles import text_at
from cds_service.fhir.draft_orders import (
    DraftMedication,
    medication_orders,
    selections_not_sent,
)
from cds_service.fhir.gather import DataGap
from cds_service.hooks.prefetch_plan import histories_cut_short
from cds_service.hooks.response import Card
from cds_service.knowledge import Knowledge
from cds_service.profile.links import ProfileLink, card_link
from cds_service.rules.assessment import Assessment
from cds_service.rules.engine import assess
from cds_service.rules.loader import BODY_WEIGHT
from cds_service.rules.orders import dosing_weight, judge_orders
from cds_service.rules.scores import compute_scores
from cds_service.rules.setting_rules import score_views, unusable_problems

ORDER_HOOKS = frozenset({"order-select", "order-sign"})
# Resources read about the patient (labs and the chart around them), by the field naming them.
_PATIENT_SCOPED = {
    "Observation": "subject",
    "DiagnosticReport": "subject",
    "Condition": "subject",
    "Procedure": "subject",
    "MedicationAdministration": "subject",
    "MedicationRequest": "subject",
    "MedicationStatement": "subject",
    "AllergyIntolerance": "patient",
}
_ALL_FOREIGN = (
    "all {count} results and chart entries received name another patient than the chart's "
    "(context.patientId), so none was used"
)
# Said on the card too: another patient's data in this chart's answer is a fault of the EHR's
# interface that its team must hear of, even when this chart's own data decided the advice.
_SOME_FOREIGN = (
    "{count} of the results and chart entries received name another patient than the chart's "
    "(context.patientId) and were not used; only the others were judged"
)
_FOREIGN_ORDERS = (
    "draft orders naming another patient than the chart's (context.patientId) were not judged "
    "against this chart: {count} of {total}"
)


# An empty answer would read as "the selected order fits".
_SELECTIONS_NOT_SENT = (
    "orders named by context.selections but not among the draft orders sent were not checked: "
    "{count} of {total}"
)


@dataclass(frozen=True)
class PatientRecord:
    """What the service knows about one patient: resources as read (not copied) and the data
    problems and gaps met while reading them."""

    resources: Sequence[dict[str, Any]]
    problems: tuple[DataProblem, ...] = ()
    gaps: tuple[DataGap, ...] = ()


@dataclass(frozen=True)
class HookContext:
    hook: str  # "patient-view" | "order-select" | "order-sign"
    patient_id: str
    encounter_id: str | None = None
    user_id: str | None = None
    draft_orders: Mapping[str, Any] | None = None  # the draftOrders Bundle as sent
    selections: frozenset[str] | None = None  # order-select: the orders just selected


@dataclass(frozen=True)
class Decision:
    assessment: Assessment
    evidence: Evidence
    cards: list[Card]
    profile: ProfileLink | None = None  # the profile page the cards link to


class LinkIssuer(Protocol):
    """Signs a new link to a profile page; None when there is none to give."""

    def __call__(self) -> ProfileLink | None: ...


def decide(
    knowledge: Knowledge,
    record: PatientRecord,
    context: HookContext,
    now: datetime,
    *,
    links: LinkIssuer | None = None,
) -> Decision:
    resources, foreign = for_patient(record.resources, context.patient_id)
    evidence = build_evidence(resources, knowledge.catalog, now)
    if record.problems or foreign:
        problems = (*record.problems, *evidence.problems, *foreign)
        evidence = evidence.model_copy(update={"problems": problems})
    newest_weight = evidence.fresh(BODY_WEIGHT)  # a bound (">150 kg") is no weight to dose by
    weight = dosing_weight(newest_weight)
    chart = read_chart(resources, knowledge.context, now, weight.value if weight else None)
    if chart.problems:
        evidence = evidence.model_copy(update={"problems": (*evidence.problems, *chart.problems)})
    cut_short = histories_cut_short(
        knowledge, (gap.key for gap in record.gaps if gap.cuts_history_short)
    )
    scores = compute_scores(knowledge.scores, evidence, chart, cut_short)
    assessment = assess(evidence, knowledge.rules, chart, score_views(scores.values()))
    profile = links() if links is not None else None
    card_links = [card_link(profile)] if profile else []
    order_context = OrderContext(
        patient_id=context.patient_id,
        encounter_id=context.encounter_id,
        user_id=context.user_id,
        now=now,
    )
    builder = knowledge.cards
    order_gaps: list[DataGapText] = []
    if context.hook in ORDER_HOOKS:
        only = context.selections if context.hook == "order-select" else None
        drafts = medication_orders(context.draft_orders or {}, only=only)
        not_sent = selections_not_sent(context.draft_orders or {}, only) if only else []
        if not_sent:
            text = _SELECTIONS_NOT_SENT.format(count=len(not_sent), total=len(only or ()))
            order_gaps.append(DataGapText("selected orders", text, partial=bool(drafts)))
        orders, foreign_orders = _own_orders(drafts, context.patient_id)
        findings = judge_orders(
            orders,
            assessment,
            knowledge.rules,
            now,
            chart,
            lambda order: order_indication(order.resource, knowledge.context, chart),
            weight=newest_weight,
            weight_unusable=next(
                (p.reason for p in unusable_problems(evidence, BODY_WEIGHT)), None
            ),
        )
        cards = builder.for_orders(findings, assessment, order_context, card_links)
        if foreign_orders:
            text = _FOREIGN_ORDERS.format(count=len(foreign_orders), total=len(drafts))
            order_gaps.append(DataGapText("draft orders", text, partial=bool(orders)))
    else:
        cards = builder.for_patient(assessment, order_context, card_links)
    gaps = [DataGapText(gap.key, gap.reason, gap.partial) for gap in record.gaps]
    if foreign and not any(_PATIENT_SCOPED.get(str(r.get("resourceType"))) for r in resources):
        # Nothing left to judge: an empty answer would read as an all-clear.
        gaps.append(DataGapText("patient data", _ALL_FOREIGN.format(count=len(foreign))))
    elif foreign:
        gaps.append(
            DataGapText("patient data", _SOME_FOREIGN.format(count=len(foreign)), partial=True)
        )
    gaps += order_gaps
    if gaps:
        cards.append(builder.data_incomplete(gaps))
    if profile is not None and not any(card.links for card in cards):
        profile = None  # no card carries the link: nothing to store
    return Decision(assessment, evidence, cards, profile)


def for_patient(
    resources: Iterable[dict[str, Any]], patient_id: str
) -> tuple[list[dict[str, Any]], list[DataProblem]]:
    """Keep what is about this patient; a result or chart entry that names another patient is
    left out, loudly.

    A prefetch or FHIR search is scoped to the patient, so another subject means a client or
    server fault; using it could attach someone else's labs or CAR-T infusion to this chart.
    """
    kept: list[dict[str, Any]] = []
    foreign: list[DataProblem] = []
    own = f"Patient/{patient_id}"  # how nearly every entry names its patient
    for resource in resources:
        field = _PATIENT_SCOPED.get(str(resource.get("resourceType")))
        reference = text_at(resource, field, "reference") if field else None
        if (
            field is not None
            and reference is not None
            and reference != own
            and _names_other_patient(reference, patient_id)
        ) or _other_patient_itself(resource, patient_id):
            foreign.append(
                DataProblem(
                    code="other-patient",
                    reason="The result belongs to another patient and was not used.",
                    reference=f"{resource.get('resourceType')}/{resource.get('id')}",
                )
            )
            continue
        kept.append(resource)
    return kept, foreign


def _own_orders(
    orders: list[DraftMedication], patient_id: str
) -> tuple[list[DraftMedication], list[DataProblem]]:
    """The draft orders for this patient; one whose subject names another patient is not
    judged against this chart, and is counted like other foreign data."""
    own: list[DraftMedication] = []
    foreign: list[DataProblem] = []
    for order in orders:
        subject = text_at(order.resource, "subject", "reference")
        if subject is not None and _names_other_patient(subject, patient_id):
            foreign.append(
                DataProblem(
                    code="other-patient",
                    reason="The draft order names another patient and was not judged.",
                    reference=order.reference,
                )
            )
            continue
        own.append(order)
    return own, foreign


def _other_patient_itself(resource: dict[str, Any], patient_id: str) -> bool:
    """A Patient resource of someone else (its birth date would give this chart an age)."""
    resource_id = resource.get("id")
    return (
        resource.get("resourceType") == "Patient"
        and isinstance(resource_id, str)
        and resource_id != patient_id
    )


_PATIENT_REFERENCE = re.compile(r"(?:^|/)Patient/([^/]+)(?:/_history/[^/]+)?$")


def _names_other_patient(reference: str, patient_id: str) -> bool:
    """True for a Patient reference (relative or absolute) to someone else.

    Other forms (urn:uuid in a transaction Bundle, a contained "#id") cannot be checked here and
    are kept.
    """
    match = _PATIENT_REFERENCE.search(reference)
    return match is not None and match.group(1) != patient_id


def decision_report(decision: Decision) -> dict[str, Any]:
    """The JSON an integration engine receives: the assessment, data problems and the cards."""
    return {
        "assessment": decision.assessment.model_dump(mode="json"),
        "problems": [p.model_dump(mode="json") for p in decision.evidence.problems],
        "cards": [card.to_json() for card in decision.cards],
    }
