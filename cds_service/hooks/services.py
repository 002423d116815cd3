"""The services this CDS service offers: one per hook, with stable ids and prefetch templates.

The prefetch templates come from `prefetch_plan` (derived from the knowledge), so the data a
client prefetches is the data the rules, the scores and the chart reader read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from cds_service.decision import HookContext
from cds_service.hooks.request import OrderSelectContext, OrderSignContext, PatientViewContext
from cds_service.hooks.response import ServiceDescription

# `patient` is the chart's patient; the other prefetch keys are the searches of prefetch_plan.
PATIENT_KEY = "patient"
COMMON_USAGE = (
    "Reads the patient's cytokine, routine lab and vital-sign Observations and the chart around "
    "them (Conditions, Procedures, drug administrations, orders and statements, allergies; FHIR "
    "R4) from prefetch; when "
    "prefetch is missing or partial it queries the client's FHIR server with the "
    "fhirAuthorization token, within a short deadline. Decision support only: it never states "
    "a diagnosis."
)


# A service's reading of `context`: validated once, into what the decision needs. Raises
# pydantic's ValidationError, which the HTTP layer answers with a 400 naming the field.
ContextReader = Callable[[Mapping[str, Any]], HookContext]


def _chart_context(hook: str, read: PatientViewContext) -> HookContext:
    """What every hook's context names: the patient, the encounter and the user."""
    return HookContext(
        hook=hook, patient_id=read.patientId, encounter_id=read.encounterId, user_id=read.userId
    )


def read_patient_view(context: Mapping[str, Any]) -> HookContext:
    return _chart_context("patient-view", PatientViewContext.model_validate(context))


def read_order_sign(context: Mapping[str, Any]) -> HookContext:
    read = OrderSignContext.model_validate(context)
    return replace(_chart_context("order-sign", read), draft_orders=read.draftOrders)


def read_order_select(context: Mapping[str, Any]) -> HookContext:
    read = OrderSelectContext.model_validate(context)
    return replace(
        _chart_context("order-select", read),
        draft_orders=read.draftOrders,
        selections=frozenset(read.selections) if read.selections is not None else None,
    )


@dataclass(frozen=True)
class ServiceSpec:
    id: str
    hook: str
    title: str
    description: str
    read_context: ContextReader
    prefetch: Mapping[str, str]

    @property
    def needed(self) -> dict[str, str]:
        """The templates whose data the rules read: what is fetched when prefetch lacks it,
        and reported as a gap when it cannot be had."""
        return {key: query for key, query in self.prefetch.items() if key != PATIENT_KEY}

    @property
    def optional(self) -> dict[str, str]:
        """The Patient read: fetched when prefetch lacks it, since the age decides the blood
        pressure cut-offs and which drug rules may be drafted; without it the cards say the age
        is not recorded, so its absence is no gap and it answers no call on its own."""
        return {key: query for key, query in self.prefetch.items() if key == PATIENT_KEY}

    def describe(self) -> ServiceDescription:
        return ServiceDescription(
            id=self.id,
            hook=self.hook,
            title=self.title,
            description=self.description,
            prefetch=dict(self.prefetch),
            usageRequirements=COMMON_USAGE,
        )


def build_services(queries: Mapping[str, str]) -> dict[str, ServiceSpec]:
    """The service registry, keyed by service id, given the prefetch searches."""
    prefetch = {PATIENT_KEY: "Patient/{{context.patientId}}", **queries}
    specs = [
        ServiceSpec(
            id="cytokine-storm-patient-view",
            hook="patient-view",
            title="Cytokine storm: setting-aware advice",
            description=(
                "When a chart opens, reads the cytokines, routine labs and the chart around them, "
                "decides the recorded clinical setting (CAR-T/bispecific, COVID-19, sepsis, "
                "Still's, HLH) and applies only that setting's sourced rules and advice (e.g. "
                "ASTCT CRS grade 2 criteria met: consider tocilizumab); with no setting "
                "recorded, a hedged cytokine pattern or the cytokine multiplex panel, never a "
                "drug."
            ),
            read_context=read_patient_view,
            prefetch=prefetch,
        ),
        ServiceSpec(
            id="cytokine-storm-order-select",
            hook="order-select",
            title="Cytokine-directed order check (select)",
            description=(
                "While an order is being written, checks a selected cytokine-directed drug "
                "(IL-1, IL-6 or IFN-γ blockade, JAK inhibitor, corticosteroid, etoposide) against "
                "the recorded setting's sourced rules and the label's safety checks: a warning "
                "naming the alternative, or a caution; with no setting recorded, no warning, and "
                "the cytokine multiplex panel where cytokine results are missing."
            ),
            read_context=read_order_select,
            prefetch=prefetch,
        ),
        ServiceSpec(
            id="cytokine-storm-order-sign",
            hook="order-sign",
            title="Cytokine-directed order check (sign)",
            description=(
                "Before orders are signed, checks every cytokine-directed drug among them against "
                "the recorded setting's sourced rules and the label's safety checks (e.g. IL-6 "
                "blockade in sepsis, a tocilizumab dose limit in CRS): a warning naming the "
                "alternative, or a caution; with no setting recorded, no warning, and the "
                "cytokine multiplex panel where cytokine results are missing."
            ),
            read_context=read_order_sign,
            prefetch=prefetch,
        ),
    ]
    return {spec.id: spec for spec in specs}
